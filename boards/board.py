"""The board interface: what every board gives the firmware.

Only boards/ touches `machine`. A board builds the bus and pin objects and the board services
and hands them to the firmware through one object with the attributes below. Drivers in lib/
receive these objects (``ADE7953(board.ade_spi, board.ade_cs)``) and never construct them.

Attributes every board provides (None where the board has no such part):

- ``name`` (str), ``serial`` (str, meter serial number, <= 16 printable characters)
- ``clock``: a Clock (see :class:`MonotonicClock`): ``ticks_ms()``, ``ticks_diff(a, b)``,
  ``ticks_add(a, b)``, ``async sleep_ms(ms)`` for metering time, ``time()`` RTC seconds
  since 2000-01-01 00:00:00 UTC and ``set_time(s)``. The virtual board runs this clock
  faster than real time; protocol timing (reaction times, timeouts) uses real
  ``asyncio.sleep_ms`` instead.
  RTC contract: the RTC keeps time while the mains is off only where the board has a backup
  supply for it. ``rtc_valid`` (bool) is False when the RTC cannot be trusted after this
  power-up (no backup supply, backup supply lost, state unknown) and stays False until
  ``set_time`` (IEC 62056-21 W1 0.9.1/0.9.2) sets it; ``rtc_note`` (str) says why. The
  firmware logs CLOCK_INVALID at power-up and raises F.F.0 bit 0x10 (ALARM) while it is
  False. Boards: the virtual board's RTC is battery-backed (boards/sim/rtc.py); the
  NUCLEO-F411RE's RTC runs from VBAT and is valid while a backup register written at the
  last ``set_time`` survives; the RP2040 has no backup supply, so its RTC is invalid after
  every chip reset (unless the board adds a battery-backed RTC chip).
- ADE7953: ``ade_spi`` (SPI, mode 0, MSB first, <= 5 MHz; datasheet Rev. C p.52),
  ``ade_cs`` (Pin, output, idle high), ``ade_irq`` (Pin, input, active low),
  ``ade_reset`` (Pin, output, active low, or None).
- UARTs: ``uart_optical`` (IEC 62056-21 optical head), ``uart_rs485`` with ``rs485_de``
  (Pin, driver enable, high = transmit), ``uart_modem`` with ``modem_pwrkey`` (Pin).
- Outputs: ``led_kwh``, ``led_kvarh`` (test LEDs, Pin-like ``value(v)``), ``status_leds``
  (tuple of two ``RGBLed``), ``relay`` (Pin-like, 1 = closed / supply connected) with
  ``relay_feedback`` (Pin, input, 1 = contacts closed).
- Inputs (Pin, input, 1 = active): ``btn_scroll``, ``btn_demand_reset``, ``sw_test``,
  ``cover``, ``terminal_cover``, ``magnet``, ``power_fail`` (1 = supply failing), ``seal``
  (1 = seal switch open, i.e. metrological parameters may change).
- ``lcd``: the display device; ``show(frame)`` takes a lib.lcd frame (8 digits + annunciators).
- ``partitions``: the flash contract. A dict of partition name -> flash object with the
  interface of lib/flashstore/flash.py (``read(addr, buf)``, ``program(addr, data)`` within
  one page, NOR semantics, ``erase(addr)`` of a sector, ``size``, ``sector_size``,
  ``page_size``; byte addresses relative to the partition), normally a
  ``flashstore.flash.Partition`` (use :func:`partitions`). A board whose storage is a block
  device wraps it in ``flashstore.flash.BlockDeviceFlash`` first. Names: ``journal`` (the
  register journal, >= 2 sectors), ``config`` (the configuration record, an even number
  >= 2 of sectors), ``events`` (event logs, >= 2 sectors; >= 5 keeps the security log apart),
  ``profile`` (load profiles, later), ``outbox`` (the uplink's store-and-forward, >= 3
  sectors, docs/UPLINK.md). A missing name: the firmware runs without it (registers,
  settings or events then live in RAM only, and F.F.0 / the LEDs say so). An empty dict: no
  flash at all.
- ``wdt``: object with ``feed()`` (a watchdog that resets the MCU when not fed in time).

Optional hooks (the firmware probes them with ``getattr``; a board leaves out what it lacks):

- ``device_address`` (str): IEC 62056-21 address; default: the serial number.
- ``on_power_fail(handler)``: install ``handler(pin)`` on the rising edge of ``power_fail``;
  without it there is no power-fail commit (only the periodic ones).
- ``irq_flag()``: the flag object the power-fail handler sets (``set()``, ``await wait()``);
  default ``asyncio.ThreadSafeFlag`` (ISR-safe). The virtual board, whose "interrupts" run in
  task context, returns an ``asyncio.Event``.
- ``commit_s`` (int): periodic register commit, s (overrides the setting ``commit_s``).
- ``attach(meter)``: called with the application object once it exists (the virtual board
  reports from it when the power is lost).
- ``tasks(meter)``: a list of extra asyncio tasks the board runs beside the firmware's (the
  virtual board: heap sampler, fault injection, control channel, RTC keeper).
- Uplink (firmware/uplink/, docs/UPLINK.md; it runs when ``uart_modem`` and the ``outbox``
  partition are there): ``uart_modem`` (``machine.UART``-like: ``any``,
  ``read``, ``write``, ``init(baudrate=)``; 115200 8N1, the modem autobauds) and
  ``modem_pwrkey`` (Pin, 1 = key pressed); ``broker`` ((host, port) of the MQTT broker, or
  None: over the setting ``uplink_broker`` at start-up, which a later change replaces);
  ``uplink_leds`` (tuple of two ``RGBLed``: signal band, modem state); ``modem_cfg`` (dict
  of modem.manager.Manager settings, e.g. the backoff); ``holdup_ms`` (int, the last gasp's
  budget after the power-fail warning, default 100).
- Concentrator (firmware/uplink/concentrator.py; optional): ``concentrator`` (tuple of 1..32
  bus addresses: the board is the RS-485 bus master on ``uart_rs485`` and reads them) and
  ``concentrator_interval_s`` (int, default 900).
- ``duration_ms()``: run for this long (metering time) and stop, or None: forever.
- ``report(meter)``: called after the run (the virtual board prints its summary and JSON).
- ``notes`` (list of str): what the board could not set up (printed at construction).
- ``clock.stopped`` (the virtual board's clock): set True by the firmware when a timed run
  ends, so that the discrete-event clock stops releasing sleepers.
"""


class RGBLed:
    """Two-colour-plus status LED made of three Pin-like outputs (1 = lit)."""

    def __init__(self, r, g, b):
        self.r = r
        self.g = g
        self.b = b

    def set(self, r, g, b):
        """Set each colour on (truthy) or off."""
        self.r.value(1 if r else 0)
        self.g.value(1 if g else 0)
        self.b.value(1 if b else 0)

    def get(self):
        """Return (r, g, b) as 0/1."""
        return (self.r.value(), self.g.value(), self.b.value())


ANCHOR_MS = 3600000  # MonotonicClock.seconds_since re-reads the RTC every hour of ticks


class MonotonicClock:
    """Clock of a real board: time.ticks_ms and asyncio.sleep_ms; RTC via time.time().

    ``time()`` returns seconds since 2000-01-01 00:00:00 UTC; ``epoch_offset`` converts the
    port's time.time() epoch (1970 on the unix port, 2000 on rp2/stm32).
    """

    def __init__(self, epoch_offset=0):
        import time

        import asyncio

        self._time = time
        self._sleep = asyncio.sleep_ms
        self._off = epoch_offset
        self._adjust = 0
        self._a_base = None  # seconds_since(): the anchor's base, ticks, RTC s - base
        self._a_ms = 0
        self._a_rel = 0
        self._a_prev = None
        self.rtc_valid = True
        self.rtc_note = ""
        self.on_set = None  # see when_set()

    def when_set(self, fn):
        """Call ``fn()`` after every ``set_time`` (e.g. to mark a backup register)."""
        self.on_set = fn

    def invalidate(self, why):
        """The RTC cannot be trusted (at power-up): ``rtc_valid`` False until set."""
        self.rtc_valid = False
        self.rtc_note = why

    def _was_set(self):
        self.rtc_valid = True
        self.rtc_note = ""
        if self.on_set is not None:
            self.on_set()

    def ticks_ms(self):
        return self._time.ticks_ms()

    def ticks_diff(self, a, b):
        return self._time.ticks_diff(a, b)

    def ticks_add(self, a, b):
        return self._time.ticks_add(a, b)

    def sleep_ms(self, ms):
        """``await clock.sleep_ms(ms)``: asyncio.sleep_ms itself, whose awaitable is one
        preallocated object on MicroPython (an ``async def`` wrapper built a coroutine
        object, ~128 B, on every await)."""
        return self._sleep(ms)

    def time(self):
        return int(self._time.time()) - self._off + self._adjust

    def seconds_since(self, base):
        """RTC seconds since ``base`` (RTC s): ``time() - base`` without a long int each call.
        A 32-bit port's ``time.time()`` is a long int from 2034-01-10 (2**30 s), so this
        reads the RTC only at an anchor (a new ``base``, a set, every
        :data:`ANCHOR_MS` of ticks) and counts ``ticks_ms`` whole seconds from it in between:
        a small int while the result is. It lags ``time() - base`` by less than 1 s (the
        anchor's sub-second phase is unknown) plus the tick/RTC crystal drift since the
        anchor (50 ppm: 0.18 s an hour), and never goes back for the same ``base`` (a
        re-anchor that would go back holds the value until the RTC passes it)."""
        ms = self._time.ticks_ms()
        d = self._time.ticks_diff(ms, self._a_ms)
        if base != self._a_base or not 0 <= d < ANCHOR_MS:
            d = self._anchor(base, ms)
        d = self._a_rel + d // 1000
        p = self._a_prev
        if p is not None and d < p:
            return p
        self._a_prev = d
        return d

    def _anchor(self, base, ms):
        # read the RTC (allocates from 2034: once an anchor) before any state changes (a
        # MemoryError leaves the anchor as it was); a frame apart from seconds_since's
        # (11 machine words at most, else MicroPython allocates it at every call)
        rel = self.time() - base
        if base != self._a_base:
            self._a_base = base
            self._a_prev = None
        self._a_ms = ms
        self._a_rel = rel
        return 0

    def set_time(self, secs):
        self._adjust += secs - self.time()
        self._a_base = None
        self._was_set()


class NullWDT:
    """Watchdog stand-in for boards (and the virtual board) without one."""

    def __init__(self):
        self.feeds = 0

    def feed(self):
        self.feeds += 1


_EPOCH_2000_FROM_1970 = 946684800


def epoch_offset():
    """Seconds to subtract from ``time.time()`` to count from 2000-01-01: MicroPython ports
    differ (MICROPY_EPOCH_IS_1970: unix 1970, most bare-metal ports 2000), so ask gmtime(0)."""
    import time

    return _EPOCH_2000_FROM_1970 if time.gmtime(0)[0] == 1970 else 0


class RtcClock(MonotonicClock):
    """:class:`MonotonicClock` whose ``set_time`` also sets the hardware RTC
    (``machine.RTC.datetime((y, m, d, weekday, h, mi, s, subs))``) so the time survives a soft
    reset. ``weekday_base``: the port's number for Monday (rp2: 0, stm32: 1). ``secs``:
    0..3155759999 (2000..2099, the range of W1 0.9.1/0.9.2), also beyond 2**31 on 32 bits."""

    def __init__(self, rtc, epoch_off, weekday_base=0):
        MonotonicClock.__init__(self, epoch_off)
        self._rtc = rtc
        self._wd0 = weekday_base

    def set_time(self, secs):
        # civil arithmetic, not time.gmtime: a 32-bit port's gmtime takes a machine word only
        # (OverflowError from 2068-01-19 03:14:08, RTC seconds >= 2**31), and the catalogue
        # accepts 2000..2099 (host_tests/unit/test_board_clock.py)
        from civil import civil

        t = civil(secs)
        self._rtc.datetime((t[0], t[1], t[2], t[6] + self._wd0, t[3], t[4], t[5], 0))
        self._adjust = 0
        self._a_base = None
        self._was_set()


class LazyWDT:
    """Watchdog started by the first ``feed()``: a ``machine.WDT`` cannot be stopped once
    running, so it must not start before the firmware's slow start-up (flash recovery) is over.
    ``wdt_class``: ``machine.WDT``; ``timeout_ms``: its timeout (rp2: <= 8388 ms)."""

    def __init__(self, wdt_class, timeout_ms):
        self._cls = wdt_class
        self.timeout_ms = timeout_ms
        self._wdt = None

    def feed(self):
        w = self._wdt
        if w is None:
            w = self._wdt = self._cls(timeout=self.timeout_ms)
        w.feed()


def partitions(flash, layout, unit=1):
    """The ``partitions`` dict of a board whose data flash is one device: ``flash`` (the
    flashstore.flash interface), ``layout`` {name: (offset, length)} in units of ``unit``
    bytes (sector-aligned). Raises ValueError for a partition outside ``flash`` or not
    sector-aligned."""
    from flashstore.flash import Partition

    return {k: Partition(flash, o * unit, n * unit) for k, (o, n) in layout.items()}
