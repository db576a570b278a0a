# ruff: noqa: F821  (a MicroPython manifest: include/module/freeze/options come from the tool)
# MicroPython manifest: the meter application frozen into a firmware image.
#
#   make firmware BOARD=RPI_PICO      (uses this file; see README "Firmware for a board")
#   or by hand in a MicroPython tree:  make -C ports/rp2 FROZEN_MANIFEST=$PWD/manifest.py
#
# Freezes every module and package of firmware/ (top-level names: app, metering, ...) and lib/
# (ade7953, energy, billing/...), the board package without the virtual board (boards.board,
# boards.pico, boards.stm32) and, unless with_main=False, firmware/main.py as the frozen `main`
# that the port runs at boot. Port modules: by default the port's own frozen modules
# ($(PORT_DIR)/modules: rp2's _boot.py and rp2.py, ...) and asyncio, which need nothing from
# micropython-lib; port_manifest=True takes the port's whole manifest instead (it requires
# micropython-lib packages). With $METER_BUILD_GEN set (make firmware does), the folder it names is
# frozen too: swid_build.py, the metrology checksum computed at build time. Paths are relative to
# this file (the manifest tool runs it from here).
import os

options.defaults(with_main=True, port_manifest=False, port_modules=True)

if options.port_manifest:
    include("$(PORT_DIR)/boards/manifest.py")
elif options.port_modules:
    freeze("$(PORT_DIR)/modules")
    include("$(MPY_DIR)/extmod/asyncio")

for _d in ("firmware", "lib"):
    for _n in sorted(os.listdir(_d)):
        if _n.endswith(".py") and (_d != "firmware" or _n != "main.py" or options.with_main):
            module(_n, base_path=_d)
        elif os.path.isdir(_d + "/" + _n) and _n[0] not in "._":
            package(_n, base_path=_d)  # a package (e.g. lib/billing): all its .py files
for _n in sorted(os.listdir("boards")):
    if _n.endswith(".py"):
        module("boards/" + _n)
if os.environ.get("METER_BUILD_GEN"):
    freeze(os.environ["METER_BUILD_GEN"])
