# ruff: noqa: F821  (a MicroPython manifest: module/package/options come from the tool)
# The application (firmware/): the wiring (app.py), the domain (meter/), the tasks (tasks/)
# and the ports (ports/); main.py, the entry that picks the board, unless with_main=False.
# The libraries are lib/manifest.py, the boards boards/manifest.py.
options.defaults(with_main=True)

module("app.py")
if options.with_main:
    module("main.py")
    module("preload.py")  # the boot's import order (main's, on a device)
for _p in ("meter", "tasks", "ports", "uplink"):
    package(_p)
