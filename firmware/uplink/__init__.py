"""The uplink: 2G modem, MQTT, store-and-forward outbox (docs/UPLINK.md)."""
