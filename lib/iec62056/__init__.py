"""IEC 62056-21 (mode C) for the meter side: ``codec`` (frames, BCC, parity, data sets),
``session`` (the sans-IO mode C state machine of one port) and ``lockout`` (the password
lockout shared by the meter's ports). No I/O, no board knowledge."""
