# The virtual board's peripherals that wrap models: LCDs and the flash as the firmware sees it.
"""Peripherals of the virtual board: the terminal LCD with its status line, the LCD of
``--quiet`` runs, and the flash guard that turns a power cut injected in the NOR model into
the end of the run."""

def _make_board_lcd():
    from boards.sim.lcd_term import TermLCD

    class BoardLCD(TermLCD):
        """The terminal LCD plus a status line: test LEDs, relay, seal, sim time."""

        def __init__(self, board, ansi=True):
            TermLCD.__init__(self, ansi=ansi)
            self._board = board
            self._status = ""

        def status(self):
            b = self._board
            lit = b.led_kwh.value()
            led = "(*)" if lit else "( )"
            if self.ansi and lit:
                led = "\x1b[1;31m(*)\x1b[0m"  # 3 visible columns either way
            return "LED kWh %s %7d pulses | relay %s | seal %s | t=%ds" % (
                led, b.led_kwh.rises, "closed" if b.relay.value() else "OPEN",
                "open" if b.seal.value() else "closed", b.clock.ticks_ms() // 1000)

        def lines(self, frame):
            out = TermLCD.lines(self, frame)
            if self.ansi:
                out = list(out) + [self.status()]
            return out

        def refresh(self):
            """Redraw the last frame with a fresh status line (ANSI mode only)."""
            if self.ansi and self.frames_shown:
                st = self.status()
                if st != self._status:
                    self._status = st
                    self.frames_shown -= 1  # the redraw below is not a new frame
                    f = self._last
                    self._last = type(f)()
                    self.show(f)

    return BoardLCD


def board_lcd(board, ansi=True):
    return _make_board_lcd()(board, ansi)


class NoNOR:
    ops = 0

    def close(self):
        pass


class CutGuard:
    """The flash as the firmware sees it: a cut injected in the NOR model ends the run."""

    def __init__(self, nor, board):
        from boards.sim.norflash import PowerCut

        self._nor = nor
        self._board = board
        self._cut = PowerCut  # (an import per operation could allocate on the power-fail path)
        self.size = nor.size
        self.sector_size = nor.sector_size
        self.page_size = nor.page_size

    def read(self, addr, buf):
        self._nor.read(addr, buf)

    def program(self, addr, data):
        # a page may carry an RTC timestamp: the RTC state on disk is never older than it
        try:
            self._board.save_rtc()
        except MemoryError:  # heap locked (an allocation-free path under test): the RTC
            pass  # keeper task saves the state within a wall second anyway
        try:
            self._nor.program(addr, data)
        except self._cut:
            self._board.lose_power("cut at flash operation %d" % self._nor.ops)

    def erase(self, addr):
        try:
            self._nor.erase(addr)
        except self._cut:
            self._board.lose_power("cut at flash operation %d" % self._nor.ops)


class NullLCD:
    """--quiet: draws nothing, keeps the last frame (``last_text`` for the control channel)."""

    def __init__(self):
        from lcd import Frame

        self.frames_shown = 0
        self._last = Frame()

    def show(self, frame):
        self.frames_shown += 1
        self._last.copy_from(frame)  # no allocation: --quiet serves the heap measurements

    @property
    def last_text(self):
        if not self.frames_shown:
            return ""
        from lcd import frame_text

        return frame_text(self._last)
