# ruff: noqa: F821  (a MicroPython manifest: metadata/package come from the tool)
import os

metadata(
    description=(
        "ADE7953 single-phase energy IC driver on SPI: power-up, configuration, "
        "calibration, energy and instantaneous reads"
    ),
    version="0.1.0",
)

# every module of the package but this manifest (the manifest tool runs from this folder)
_files = sorted(n for n in os.listdir(".") if n.endswith(".py") and n != "manifest.py")
package("ade7953", files=_files, base_path="..", opt=3)
