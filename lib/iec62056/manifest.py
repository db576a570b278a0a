# ruff: noqa: F821  (a MicroPython manifest: metadata/package come from the tool)
metadata(
    description=(
        "IEC 62056-21 mode C, meter side: codec, sans-IO session, password lockout"
    ),
    version="0.1.0",
)
# needs from lib/: ticks (lib/manifest.py includes every package)

package("iec62056", base_path="..")
