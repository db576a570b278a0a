# ruff: noqa: F821  (a MicroPython manifest: metadata/package come from the tool)
import os

metadata(
    description=(
        "IEC 62056-21 mode C, meter side: codec, sans-IO session, password lockout"
    ),
    version="0.1.0",
)
# needs from lib/: ticks (lib/manifest.py includes every package)

# every module of the package but this manifest (the manifest tool runs from this folder)
_files = sorted(n for n in os.listdir(".") if n.endswith(".py") and n != "manifest.py")
package("iec62056", files=_files, base_path="..", opt=3)
