"""2G modem uplink core (issue 11): sans-IO AT engine (``at``), modem profiles (``sim800``,
``m95``), signal quality (``signal``), the connection manager (``manager``), the UART pump
(``link``), a socket-like adapter (``sock``) and umqtt.simple with wrapping packet ids
(``mqtt``). Board- and wiring-independent: nothing here touches ``machine``."""
