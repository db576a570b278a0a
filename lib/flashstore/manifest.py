# ruff: noqa: F821  (a MicroPython manifest: metadata/package come from the tool)
metadata(
    description=(
        "Power-cut-safe storage on raw NOR flash: flash interface, sector ring, "
        "register journal, configuration record"
    ),
    version="0.1.0",
)

package("flashstore", base_path="..")
