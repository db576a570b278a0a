# ruff: noqa: F821  (a MicroPython manifest: metadata/package come from the tool)
metadata(
    description=(
        "Energy register banks (integer, quadrant split, tariff banks) and the test "
        "pulse output / no-load gate (energy.pulse)"
    ),
    version="0.1.0",
)

package("energy", base_path="..")
