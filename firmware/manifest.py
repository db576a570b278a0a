# ruff: noqa: F821  (a MicroPython manifest: module/package/options come from the tool)
# The application (firmware/): the wiring (app.py), the domain (meter/), the tasks (tasks/)
# and the ports (ports/); main.py, the entry that picks the board, unless with_main=False.
# The libraries are lib/manifest.py, the boards boards/manifest.py.
# opt=3 (as in every device manifest): no line-number tables (~7 % of the bytecode; device
# code has no assert), as tools/deploy.py compiles the .mpy files.
options.defaults(with_main=True)

module("app.py", opt=3)
if options.with_main:
    module("main.py", opt=3)
    module("preload.py", opt=3)  # the boot's import order (main's, on a device)
for _p in ("meter", "tasks", "ports", "uplink"):
    package(_p, opt=3)
