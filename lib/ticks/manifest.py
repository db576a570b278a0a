# ruff: noqa: F821  (a MicroPython manifest: metadata/package come from the tool)
metadata(
    description=(
        "Real-time ms ticks with one wrap rule (2**30) on every port"
    ),
    version="0.1.0",
)

package("ticks", base_path="..")
