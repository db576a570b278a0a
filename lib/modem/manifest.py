# ruff: noqa: F821  (a MicroPython manifest: metadata/package come from the tool)
metadata(
    description=(
        "2G uplink core: AT engine, SIM800/M95 profiles, connection manager, UART pump, "
        "socket adapter, MQTT"
    ),
    version="0.1.0",
)
# needs from lib/: ticks (lib/manifest.py includes every package)

package("modem", base_path="..")
