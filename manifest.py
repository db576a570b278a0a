# ruff: noqa: F821  (a MicroPython manifest: include/module/freeze/options come from the tool)
# MicroPython manifest: the meter application frozen into a firmware image.
#
#   make firmware BOARD=RPI_PICO      (uses this file; see README "Firmware for a board")
#   or by hand in a MicroPython tree:  make -C ports/rp2 FROZEN_MANIFEST=$PWD/manifest.py
#
# Freezes the application (firmware/manifest.py: app, the packages meter, tasks and ports,
# and unless with_main=False firmware/main.py as the frozen `main` that the port runs at
# boot), every library package (lib/manifest.py: ade7953, energy, ..., billing, modem) and the
# real boards' modules (boards/manifest.py: boards.board, boards.pico, boards.stm32 and their
# drivers; the virtual board is for the unix port only). Port modules: by default the port's
# own frozen modules ($(PORT_DIR)/modules: rp2's _boot.py and rp2.py, ...) and asyncio, which
# need nothing from micropython-lib; port_manifest=True takes the port's whole manifest
# instead (it requires micropython-lib packages). With $METER_BUILD_GEN set (make firmware
# does), the folder it names is frozen too: swid_build.py, the metrology checksum computed at
# build time. Paths are relative to this file (the manifest tool runs it from here).
import os

options.defaults(with_main=True, port_manifest=False, port_modules=True)

if options.port_manifest:
    include("$(PORT_DIR)/boards/manifest.py")
elif options.port_modules:
    freeze("$(PORT_DIR)/modules")
    include("$(MPY_DIR)/extmod/asyncio")

include("firmware/manifest.py", with_main=options.with_main)
include("lib/manifest.py")
include("boards/manifest.py")
if os.getenv("METER_BUILD_GEN"):
    freeze(os.getenv("METER_BUILD_GEN"))
