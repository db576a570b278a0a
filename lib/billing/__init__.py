"""Billing core (issue 10): pure, board-independent functions for time of use, demand, load
profiles and billing periods, wired into the firmware by firmware/meter/ (tariffs, demand,
billing, profile); see docs/BILLING.md.

Modules (import them directly, e.g. ``from billing import tou``; this file imports nothing so
that a device loads only what it uses):

- ``localtime``: time zone + DST rule (EU, North America, none), UTC <-> local seconds,
  DLMS clock status bits.
- ``easter``: Western and Orthodox Easter Sunday (movable holidays).
- ``tou``: activity calendar shaped like DLMS class 20 + special days table (class 11),
  active/passive plans, JSON configuration.
- ``tariff``: the tariff in force in UTC (calendar + zone, cached) and the exact split of
  one metering interval's energy between tariffs.
- ``demand``: block, sliding and thermal demand, maximum demand per tariff, demand reset.
- ``profile``: load profile rows packed into ring-log records.
- ``p01``: IEC 62056-21 VDEW ``P.01`` load profile readout (formatter and parser).
- ``period``: end-of-billing schedule, billing snapshot record, historical value names.

Time: "RTC seconds" are seconds since 2000-01-01 00:00:00 UTC (boards/board.py); "local
seconds" count the same way on the local wall clock (lib/civil converts both to dates).
"""
