# ruff: noqa: F821  (a MicroPython manifest: metadata/package come from the tool)
metadata(
    description=(
        "Billing core: local time and DST, TOU calendar, tariff split, demand, load "
        "profiles, billing periods"
    ),
    version="0.1.0",
)
# needs from lib/: civil (lib/manifest.py includes every package)

package("billing", base_path="..")
