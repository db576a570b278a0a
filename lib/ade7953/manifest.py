# ruff: noqa: F821  (a MicroPython manifest: metadata/package come from the tool)
metadata(
    description=(
        "ADE7953 single-phase energy IC driver on SPI: power-up, configuration, "
        "calibration, energy and instantaneous reads"
    ),
    version="0.1.0",
)

package("ade7953", base_path="..")
