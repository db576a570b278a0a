# ruff: noqa: F821  (a MicroPython manifest: metadata/package come from the tool)
metadata(
    description=(
        "RTC seconds since 2000-01-01 UTC <-> civil date and time"
    ),
    version="0.1.0",
)

package("civil", base_path="..")
