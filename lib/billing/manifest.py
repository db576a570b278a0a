# ruff: noqa: F821  (a MicroPython manifest: metadata/package come from the tool)
import os

metadata(
    description=(
        "Billing core: local time and DST, TOU calendar, tariff split, demand, load "
        "profiles, billing periods"
    ),
    version="0.1.0",
)
# needs from lib/: civil (lib/manifest.py includes every package)

# every module of the package but this manifest (the manifest tool runs from this folder)
_files = sorted(n for n in os.listdir(".") if n.endswith(".py") and n != "manifest.py")
package("billing", files=_files, base_path="..", opt=3)
