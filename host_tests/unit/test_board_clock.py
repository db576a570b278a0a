"""boards/board.py RtcClock on a 32-bit port: setting the RTC over IEC 62056-21 (W1 0.9.2
accepts 2000..2099, meter/catalogue.py) must reach the hardware RTC for every date of that
range. A 32-bit MicroPython's ``time.gmtime`` takes a machine word only (OverflowError
"overflow converting long int to machine word" from 2068-01-19 03:14:08 on, RTC seconds
>= 2**31), which the catalogue answered as ER09 on a Pico or a NUCLEO. Both interpreters."""

import time

from boards.board import RtcClock


class Word32Time:
    """``time`` of a 32-bit port: gmtime refuses seconds beyond a signed machine word."""

    def __init__(self, off):
        self.off = off
        self.now = 0

    def gmtime(self, s):
        if not -(2**31) <= s < 2**31:
            raise OverflowError("overflow converting long int to machine word")
        return time.gmtime(s + self.off)

    def time(self):
        return self.now


class FakeRTC:
    def __init__(self):
        self.set = None

    def datetime(self, t=None):
        if t is not None:
            self.set = t
        return self.set


def _epoch_off():
    return 946684800 if time.gmtime(0)[0] == 1970 else 0


def _clock(wd0):
    rtc = FakeRTC()
    clk = RtcClock(rtc, 0, wd0)
    clk._time = Word32Time(_epoch_off())  # the port's epoch is 2000 (rp2, stm32): offset 0
    clk.invalidate("test")
    return clk, rtc


def test_rtc_is_set_for_every_date_the_catalogue_accepts():
    cases = (
        (0, (2000, 1, 1, 5, 0, 0, 0, 0)),  # a Saturday (Monday = 0, rp2)
        (2**31 - 1, (2068, 1, 19, 3, 3, 14, 7, 0)),
        (2**31, (2068, 1, 19, 3, 3, 14, 8, 0)),  # a Thursday
        (3155759999, (2099, 12, 31, 3, 23, 59, 59, 0)),  # the catalogue's last second
    )
    for secs, want in cases:
        clk, rtc = _clock(0)
        clk.set_time(secs)
        assert rtc.set == want, (secs, rtc.set, want)
        assert clk.rtc_valid and clk.rtc_note == ""


def test_rtc_weekday_base_of_stm32():
    clk, rtc = _clock(1)  # stm32: Monday = 1
    clk.set_time(2**31 + 86400 * 4)  # 2068-01-23, a Monday
    assert rtc.set[:4] == (2068, 1, 23, 1), rtc.set
