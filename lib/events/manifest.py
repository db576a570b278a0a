# ruff: noqa: F821  (a MicroPython manifest: metadata/package come from the tool)
metadata(
    description=(
        "Meter event codes, the in-RAM event log, the persisted 16-byte record, log "
        "split and flood limit"
    ),
    version="0.1.0",
)

package("events", base_path="..")
