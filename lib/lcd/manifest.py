# ruff: noqa: F821  (a MicroPython manifest: metadata/package come from the tool)
metadata(
    description=(
        "7-segment meter LCD frames, value formatting, scrolling lists, and the HT1621 "
        "glass driver (lcd.ht1621)"
    ),
    version="0.1.0",
)
# needs from lib/: ticks (lib/manifest.py includes every package)

package("lcd", base_path="..")
