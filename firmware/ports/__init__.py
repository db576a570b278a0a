"""The meter's serial ports: ``pump`` moves bytes between a UART and a sans-IO protocol
session (any protocol); one data map per protocol translates the OBIS catalogue into that
protocol's terms: ``iec`` (IEC 62056-21 mode C). DLMS/COSEM (HDLC on the same ports, or a
wrapper on the uplink) is the next map; it reads the same catalogue."""
