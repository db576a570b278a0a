# ruff: noqa: F821  (a MicroPython manifest: metadata/package come from the tool)
import os

metadata(
    description=(
        "Energy register banks (integer, quadrant split, tariff banks) and the test "
        "pulse output / no-load gate (energy.pulse)"
    ),
    version="0.1.0",
)

# every module of the package but this manifest (the manifest tool runs from this folder)
_files = sorted(n for n in os.listdir(".") if n.endswith(".py") and n != "manifest.py")
package("energy", files=_files, base_path="..", opt=3)
