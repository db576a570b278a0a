# ruff: noqa: F821  (a MicroPython manifest: include/module/freeze/options come from the tool)
# Frozen into the emulated unit-test firmware (QEMU MPS2_AN385 / NETDUINO2; tools/emu/emu.py):
# the project's device modules through the project's own manifest (without main), asyncio,
# the virtual board's models (boards/sim), every host_tests/unit/*.py present at build time,
# the on-target runner and the generated modules in $EMU_GEN (set by tools/emu/emu.py): the
# test list, small data files for the RAM disk and swid_build (the metrology checksum).
import os

include("$(MPY_DIR)/extmod/asyncio")
include("../../manifest.py", with_main=False, port_modules=False)
package("boards/sim", base_path="../..", opt=3)  # (as the device code)
# every host_tests/unit module but those whose every test is host-only on this board
# ($EMU_NOT_FROZEN, tools/emu/emu.py not_frozen(): the image has room for the rest only)
_skip = os.environ.get("EMU_NOT_FROZEN", "").split()
for _f in sorted(os.listdir("../../host_tests/unit")):  # (a manifest runs in its own folder)
    if _f.endswith(".py") and _f[:-3] not in _skip:
        module(_f, base_path="../../host_tests/unit")
module("fuzz_iec.py", base_path="../../tools")  # test_iec_fuzz drives it in process
module("fuzz_at.py", base_path="../../tools")  # test_modem_fuzz drives it in process
# umqtt.simple (PyPI micropython-umqtt.simple, make uplink-lib) for test_modem_sock
package("umqtt", base_path="../../.frozen-lib")
module("iec_client.py", base_path="../../tools")  # the client side of the IEC tests
module("emu_unit.py")
module("emu_blockdev.py")
module("emu_host_only.py")
module("emu_bench.py")
freeze(os.environ["EMU_GEN"])
if os.environ.get("EMU_EXTRA_TESTS"):
    freeze(os.environ["EMU_EXTRA_TESTS"])
