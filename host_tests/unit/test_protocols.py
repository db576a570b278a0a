"""firmware/ports/iec.py over the OBIS catalogue: the meter's IEC 62056-21 data, lists and
parameters (W1 paths); the
meter-level trust rules (issue 7 items 11-14): one persisted lockout for both ports, the
configuration fallback, coalesced configuration writes, refusals persisted with what they
concerned, floods that cannot wipe the security log."""

import gc

import events
from boards.sim.board import Options, SimBoard
from iec62056 import codec as iec
from meter.status import ERR_CONFIG, ERR_SECURITY
from iec62056.session import ER_BAD_VALUE, ER_LOCKED, ER_NOT_WRITABLE, ER_SEALED
from simkit import StepTrace


def _meter(board=None):
    import app

    if board is None:
        o = Options()
        o.quiet = True
        o.serial = "12345678"
        board = SimBoard(o, trace=StepTrace([(0, 1000000, 0)]))
    m = app.Meter(board)
    return board, m, m.iec_map()


def _reboot(board, m):
    """An orderly restart on the same flash (shutdown writes what the budget held back)."""
    m.shutdown()
    return _meter(board)


def test_readout_list_is_configurable_and_saved():
    board, m, d = _meter()
    assert [a for a, _v, _u in d.readout()][:2] == ["C.1.0", "0.0.0"]
    assert d.writer("C.90.3", "1.8.0,C.1.0", True) is None
    assert [a for a, _v, _u in d.readout()] == ["1.8.0", "C.1.0"]
    assert d.writer("C.90.3", "1.8.0,9.9.9", True) == ER_BAD_VALUE, "unknown code refused"
    assert d.reader("C.90.3")[0] == "1.8.0,C.1.0"
    board2, m2, d2 = _reboot(board, m)  # reboot on the same flash: the list survived
    assert [a for a, _v, _u in d2.readout()] == ["1.8.0", "C.1.0"], m2.settings.status


def test_display_list_must_keep_the_billing_register():
    board, m, d = _meter()
    assert d.writer("C.90.4", "2.8.0,32.7.0", True) == ER_BAD_VALUE
    assert d.writer("C.90.4", "1.8.0,32.7.0", True) is None
    assert m.settings["display_list"] == ["1.8.0", "32.7.0"]
    assert m.display.display.items(0) == 2


def test_password_change_persists():
    board, m, d = _meter()
    assert d.writer("C.90.2", "1234", True) == ER_BAD_VALUE
    assert d.writer("C.90.2", "87654321", True) is None
    board2, m2, d2 = _reboot(board, m)
    assert d2.password == "87654321"


def test_metrological_write_needs_open_seal():
    board, m, d = _meter()
    assert d.writer("0.3.0", "2000", True) == ER_SEALED
    assert m.settings["meter_constant"] == 1000
    assert d.writer("0.3.0", "2000", False) is None
    assert m.settings["meter_constant"] == 2000
    assert d.writer("1.8.0", "0", False) == ER_NOT_WRITABLE, "billing registers never written"
    assert d.executor("C.91.9", "", True) == ER_SEALED, "no cold start under seal"


def test_kwh_text():
    from ports.iec import kwh_text

    assert kwh_text(1234567890) == "0001234.567", kwh_text(1234567890)
    assert kwh_text(-5000) == "-0000000.005"


# ---------------------------------------------------------------------------------------------
# a port driven in process: the firmware's own session over the IEC map


class Port:
    def __init__(self, md, src, t=10000):
        self.s = md.session(src == events.SRC_OPTICAL, src)
        self.t = t

    def x(self, data):
        """Send ``data``; return every byte the meter answers (timers run 300 ms on)."""
        out = bytearray()
        a = self.s.feed(data, self.t)
        while a is not None:
            if a[1]:
                out.extend(a[1])
            a = self.s.poll(self.t)
        self.t += 300
        return bytes(out)

    def prog(self, pw="00000000"):
        assert self.x(b"/?12345678!\r\n").startswith(b"/OMF5"), "identification"
        assert self.x(b"\x06051\r\n").startswith(b"\x01P0"), "P0"
        return self.x(iec.build_command("P", 1, "(%s)" % pw))


def _cmd(c, t, data):
    return bytes(iec.build_command(c, t, data))


def _err(code):
    return bytes(iec.build_error(code))


def _persisted(m, code, log=None):
    return [e for e in m.events.persisted(log) if e[1] == code]


def test_refusals_are_persisted_with_address_and_port():
    board, m, d = _meter()
    bus = Port(d, events.SRC_RS485)
    assert bus.prog("11111111") == _err(2)
    bus.x(_cmd("W", 1, "C.90.2(12345678)"))  # W1 without a password: ER07
    rec = _persisted(m, events.REFUSED_NO_PASSWORD, events.LOG_SECURITY)
    assert rec and rec[-1][3] == events.SRC_RS485 and rec[-1][4] == "C.90.2", rec
    assert rec[-1][2] == (7 << 16) | 0x5731, hex(rec[-1][2])
    opt = Port(d, events.SRC_OPTICAL)
    assert opt.prog() == iec.ACK_MSG
    assert opt.x(_cmd("W", 1, "1.8.0(0)")) == _err(ER_NOT_WRITABLE)
    assert opt.x(_cmd("W", 1, "0.3.0(2000)")) == _err(ER_SEALED)
    assert opt.x(_cmd("W", 1, "C.90.1(15)")) == iec.ACK_MSG
    rec = _persisted(m, events.REFUSED_NOT_WRITABLE)
    assert rec and rec[-1][3:5] == (events.SRC_OPTICAL, "1.8.0"), rec
    rec = _persisted(m, events.SEALED_REFUSED, events.LOG_SECURITY)
    assert rec and rec[-1][3:5] == (events.SRC_OPTICAL, "0.3.0"), rec
    rec = _persisted(m, events.PARAM_CHANGED, events.LOG_SECURITY)
    assert rec and rec[-1][2:5] == (15, events.SRC_OPTICAL, "C.90.1"), rec
    w = _persisted(m, events.WRONG_PASSWORD, events.LOG_SECURITY)
    assert w and w[-1][2:4] == (1, events.SRC_RS485), w
    assert not [e for e in m.events.persisted() if e[1] == events.PARAM_CHANGED and e[4] ==
                "C.90.2"], "a refused password write changes nothing"


def test_one_lockout_per_meter_that_survives_a_restart():
    board, m, d = _meter()
    opt = Port(d, events.SRC_OPTICAL)
    for pw in ("11111111", "22222222"):
        assert opt.prog(pw) == _err(2)
    assert opt.prog("33333333") == _err(ER_LOCKED)
    bus = Port(d, events.SRC_RS485)
    assert bus.prog() == _err(ER_LOCKED), "the RS-485 port of the same meter is locked too"
    m.shutdown()
    m = d = opt = bus = None  # one meter at a time (a device-sized heap, tools/emu)
    board2, m2, d2 = _meter(board)
    opt2 = Port(d2, events.SRC_OPTICAL)
    assert opt2.prog() == _err(ER_LOCKED), "a restart does not clear the lockout"
    locked = _persisted(m2, events.PW_WHILE_LOCKED, events.LOG_SECURITY)
    assert [e[3] for e in locked] == [events.SRC_RS485, events.SRC_OPTICAL], locked
    assert _persisted(m2, events.PROG_LOCKED)[-1][2] == 600
    # two wrong passwords, a restart, one more: locked (the count is persisted too)
    m2 = d2 = opt2 = locked = None
    board, m, d = _meter()
    opt = Port(d, events.SRC_OPTICAL)
    assert opt.prog("11111111") == _err(2) and opt.prog("22222222") == _err(2)
    m.shutdown()
    m = d = opt = None
    board2, m2, d2 = _meter(board)
    assert Port(d2, events.SRC_RS485).prog("33333333") == _err(ER_LOCKED)


def test_a_master_logging_in_on_rs485_does_not_reset_an_optical_guesser():
    # item 11 with the merged pieces: the lockout is per meter, so the count of wrong
    # passwords was too, and a right P1 on any port reset it: a bus master logging in
    # between the guesses gave an optical guesser 2 tries per login, never locked
    board, m, d = _meter()
    opt = Port(d, events.SRC_OPTICAL)
    bus = Port(d, events.SRC_RS485)
    assert opt.prog("11111111") == _err(2)
    assert opt.x(_cmd("P", 1, "(22222222)")) == _err(2)
    assert bus.prog() == iec.ACK_MSG, "the master's own login works"
    bus.x(_cmd("B", 0, None))
    assert opt.prog("33333333") == _err(ER_LOCKED), "the guesser's third wrong one locks"
    assert bus.prog() == _err(ER_LOCKED), "on every port"
    del board, m, d, opt, bus  # (one meter at a time, tools/emu)
    # and after a restart the optical failures are still booked to the optical port
    board, m, d = _meter()
    opt = Port(d, events.SRC_OPTICAL)
    assert opt.prog("11111111") == _err(2)
    assert opt.x(_cmd("P", 1, "(22222222)")) == _err(2)
    assert Port(d, events.SRC_RS485).prog() == iec.ACK_MSG
    del m, d, opt  # power cut: that meter's RAM is gone
    board2, m2, d2 = _meter(board)  # power cut
    assert Port(d2, events.SRC_OPTICAL).prog("33333333") == _err(ER_LOCKED)


def test_an_acknowledged_password_or_meter_constant_survives_a_power_cut():
    # a W1 C.90.2 got ACK, the configuration write waited for the 2 s coalescing delay (or
    # an hour under the wear budget) and a power cut brought the old password back, while
    # the security log said "parameter changed C.90.2"
    board, m, d = _meter()
    opt = Port(d, events.SRC_OPTICAL)
    assert opt.prog() == iec.ACK_MSG
    assert opt.x(_cmd("W", 1, "C.90.2(24681357)")) == iec.ACK_MSG
    board.seal.set_input(1)
    assert opt.x(_cmd("W", 1, "0.3.0(10000)")) == iec.ACK_MSG
    del m, d, opt  # power cut: that meter's RAM is gone (one meter at a time, tools/emu)
    board2, m2, d2 = _meter(board)  # power cut: no shutdown, no config tick
    assert Port(d2, events.SRC_OPTICAL).prog("24681357") == iec.ACK_MSG, "the new password"
    assert m2.settings["meter_constant"] == 10000
    # the wear budget spent by a flood of other writes: the password is refused (ER09),
    # never acknowledged and then lost
    opt = Port(d2, events.SRC_OPTICAL)
    assert opt.prog("24681357") == iec.ACK_MSG
    st = m2.settings
    now = 0
    for i in range(8):
        assert opt.x(_cmd("W", 1, "C.90.1(%d)" % (10 + i))) == iec.ACK_MSG
        now += 3
        st.tick(now)  # the housekeeping task's second
    assert opt.x(_cmd("W", 1, "C.90.2(11112222)")) == _err(9)
    assert d2.password == "24681357" and st["password"] == "24681357"
    rec = _persisted(m2, events.REFUSED_FAILED)
    assert rec and rec[-1][4] == "C.90.2", rec
    st._now_s = now + 3600  # an hour later the budget has a write again
    assert opt.x(_cmd("W", 1, "C.90.2(11112222)")) == iec.ACK_MSG
    del m2, d2, opt, st  # power cut
    board3, m3, d3 = _meter(board2)
    assert Port(d3, events.SRC_OPTICAL).prog("11112222") == iec.ACK_MSG


def _flood_and_cut(board, boots):
    """``boots`` power cycles, each with a short flood from an optical probe (P1 during the
    lockout, R1 without a password) and the power-fail warning's summaries."""
    for _ in range(boots):
        board, m, d = _meter(board)
        opt = Port(d, events.SRC_OPTICAL)
        opt.prog()
        for _ in range(5):
            opt.x(_cmd("P", 1, "(00000000)"))
            opt.x(_cmd("R", 1, "1.8.0()"))
        m.events.tick(True)
        m = d = opt = None  # one meter at a time (a device-sized heap, tools/emu)
        gc.collect()  # (a boot's garbage gone before the next: its heap is the device's)
    return _meter(board)


def test_power_cycles_with_floods_cannot_flush_a_lockout_out_of_the_log():
    # the lockout lives in the security log, a ring: an optical probe flooding refusals and
    # a hand on the breaker (the flood limit starts afresh at each power-up) pushed the
    # lockout's records out after ~33 power cycles, and the meter forgot the lockout
    board, m, d = _meter()
    opt = Port(d, events.SRC_OPTICAL)
    for pw in ("11111111", "22222222", "33333333"):
        opt.prog(pw)
    t0 = board.clock.time()
    assert d.lockout.remaining(t0) == 600
    m = d = opt = None
    board, m, d = _flood_and_cut(board, 80)
    assert d.lockout.remaining(board.clock.time()) == 600 - (board.clock.time() - t0), \
        "the lockout is remembered, to the second"
    assert Port(d, events.SRC_OPTICAL).prog() == _err(ER_LOCKED)
    # it expires; more floods and power cycles; the next lockout still doubles
    board.clock.set_time(t0 + 700)
    del m, d  # (one meter at a time, tools/emu)
    board, m, d = _flood_and_cut(board, 80)
    opt = Port(d, events.SRC_OPTICAL)
    for pw in ("11111111", "22222222", "33333333"):
        opt.prog(pw)
    assert d.lockout.remaining(board.clock.time()) == 1200, "doubling kept"


def test_a_flood_of_refusals_cannot_wipe_the_logs():
    board, m, d = _meter()
    board.seal.set_input(1)
    m.log.log(events.SEAL_OPEN, 1, None, events.SRC_LOCAL)
    board.seal.set_input(0)
    opt = Port(d, events.SRC_OPTICAL)
    assert opt.prog() == iec.ACK_MSG
    for i in range(2000):  # the 1054-refusal flood of the issue, twice over
        assert opt.x(_cmd("W", 1, "0.3.0(%d)" % (1000 + i))) == _err(ER_SEALED)
        opt.x(_cmd("W", 1, "1.8.0(0)"))
    sec = m.events.persisted(events.LOG_SECURITY)
    std = m.events.persisted(events.LOG_STANDARD)
    assert _persisted(m, events.SEAL_OPEN), "the seal event survives"
    assert [e for e in std if e[1] == events.POWER_UP], "and the boot record"
    sealed = [e for e in sec if e[1] == events.SEALED_REFUSED]
    assert len(sealed) <= 8, len(sealed)
    assert sum(e[2] if e[5] else 1 for e in sealed) + m.events.limit.pending(
        events.SEALED_REFUSED) == 2000, "each refusal accounted for (records + summaries)"
    m.events.tick(force=True)
    sealed = _persisted(m, events.SEALED_REFUSED)
    assert sum(e[2] if e[5] else 1 for e in sealed) == 2000, sealed
    assert m.log.count(events.SEALED_REFUSED) == 2000, "all of them in the RAM log's counts"


async def test_flood_summaries_are_written_at_the_power_fail_warning():
    # "every attempt made during a lockout is logged": beyond the first 3 per window they
    # were only counted in RAM, and a power cut (the supply's own warning) lost the count
    import asyncio

    board, m, d = _meter()
    opt = Port(d, events.SRC_OPTICAL)
    for pw in ("11111111", "22222222", "33333333"):
        opt.prog(pw)
    for _ in range(50):
        assert opt.x(_cmd("P", 1, "(00000000)")) == _err(ER_LOCKED)
    from tasks.storage import power_fail_watch

    task = asyncio.create_task(power_fail_watch(m.storage, board, m.log, m.events))
    await asyncio.sleep_ms(0)
    board.power_fail.set_input(1)  # the supply fails: the warning, then nothing
    for _ in range(5):
        await asyncio.sleep_ms(0)
    task.cancel()
    board2, m2, d2 = _meter(board)
    rec = _persisted(m2, events.PW_WHILE_LOCKED, events.LOG_SECURITY)
    assert sum(e[2] if e[5] else 1 for e in rec) == 50, rec
    assert _persisted(m2, events.POWER_FAIL), "the warning was seen"


def test_w1_flood_is_coalesced_within_the_wear_budget():
    board, m, d = _meter()
    opt = Port(d, events.SRC_OPTICAL)
    assert opt.prog() == iec.ACK_MSG
    cfg_sectors = (16, 17)  # config partition 64..72 KiB of the virtual board's flash
    e0 = sum(board.nor.erase_counts[s] for s in cfg_sectors)
    st = m.settings
    for i in range(276):  # the flood: 276 writes in 60 s
        st.tick(i * 60 // 276)  # the housekeeping task's second
        assert opt.x(_cmd("W", 1, "C.90.1(%d)" % (10 + i % 7))) == iec.ACK_MSG
        st.tick(i * 60 // 276)
    st.tick(63)
    erases = sum(board.nor.erase_counts[s] for s in cfg_sectors) - e0
    assert erases <= 2, ("one write per minute of changes at most", erases)
    assert not st.pending, "and the last value is saved"
    # a sustained flood: 4 writes, then one an hour
    for s in range(64, 64 + 6 * 3600, 5):
        st.tick(s)
        d.writer("C.90.1", "%d" % (10 + s % 7), True)
        st.tick(s)
    erases = sum(board.nor.erase_counts[s] for s in cfg_sectors) - e0
    assert erases <= 2 + 4 + 6, erases
    assert _persisted(m, events.CONFIG_DEFERRED), "a held-back write is logged"
    board2, m2, d2 = _reboot(board, m)
    assert m2.settings["scroll_ms"] == m.settings["scroll_ms"], "shutdown writes the last change"


def _config_slots(board):
    off = board.flash_layout["config"][0]
    import struct

    seqs = []
    for i in (0, 1):
        h = bytes(board.nor.image[off + i * 4096 : off + i * 4096 + 16])
        seqs.append(struct.unpack_from("<I", h, 4)[0] if h[:2] == b"CF" else -1)
    return off, seqs


def test_damaged_newest_config_copy_never_brings_back_the_factory_password():
    board, m, d = _meter()
    assert d.writer("C.90.2", "87654321", True) is None
    m.settings.flush()
    off, seqs = _config_slots(board)
    newest = 0 if seqs[0] > seqs[1] else 1
    assert min(seqs) == 1 and max(seqs) == 2, seqs  # older copy: the factory defaults
    board.nor.image[off + newest * 4096 + 40] ^= 0x04  # one bit flip in its JSON
    board2, m2, d2 = _meter(board)
    assert m2.settings["password"] == "00000000", "the older copy is used ..."
    flags = m2.status.error_flags()
    assert flags & ERR_CONFIG and flags & ERR_SECURITY, hex(flags)
    assert m2.status.alarm(), "... flagged (F.F.0, LCD ALARM)"
    assert d2.reader("F.F.0")[0] == "%08X" % flags
    opt = Port(d2, events.SRC_OPTICAL)
    assert opt.prog("00000000") == _err(ER_SEALED), "factory password refused under seal"
    assert _persisted(m2, events.CONFIG_FALLBACK, events.LOG_SECURITY), "logged persistently"
    sf = _persisted(m2, events.SECURITY_FALLBACK, events.LOG_SECURITY)
    assert sf and sf[-1][2] == 1, sf
    board2.seal.set_input(1)  # a technician opens the seal: the factory password, to reset it
    opt = Port(d2, events.SRC_OPTICAL)
    assert opt.prog("00000000") == iec.ACK_MSG
    assert opt.x(_cmd("W", 1, "C.90.2(11223344)")) == iec.ACK_MSG
    assert not m2.status.error_flags() & ERR_SECURITY, "trusted again"
    assert m2.status.error_flags() & ERR_CONFIG, "until acknowledged"
    assert opt.x(_cmd("E", 2, "C.91.0()")) == iec.ACK_MSG
    assert not m2.status.error_flags() & (ERR_CONFIG | ERR_SECURITY)


def test_older_own_password_still_works_but_is_flagged():
    board, m, d = _meter()
    d.writer("C.90.2", "87654321", True)
    m.settings.flush()
    d.writer("C.90.1", "20", True)
    m.settings.flush()
    off, seqs = _config_slots(board)
    newest = 0 if seqs[0] > seqs[1] else 1
    board.nor.image[off + newest * 4096 + 40] ^= 0x01
    board2, m2, d2 = _meter(board)
    assert m2.settings["password"] == "87654321" and m2.settings["scroll_ms"] == 10000
    assert m2.status.error_flags() & ERR_SECURITY
    assert Port(d2, events.SRC_OPTICAL).prog("87654321") == iec.ACK_MSG


def test_both_copies_damaged_keep_programming_closed_and_strict():
    board, m, d = _meter()
    d.writer("C.90.2", "87654321", True)
    m.settings.flush()
    off, _ = _config_slots(board)
    for i in (0, 1):
        board.nor.image[off + i * 4096 + 30] ^= 0x10
    board2, m2, d2 = _meter(board)
    assert m2.settings.status == "corrupt -> defaults"
    assert _persisted(m2, events.CONFIG_DEFAULTS), "persisted, not lost before the log opens"
    assert Port(d2, events.SRC_RS485).prog("00000000") == _err(ER_SEALED)
    assert m2.settings["prog_max_failures"] <= 3 and m2.settings["prog_lockout_s"] >= 600


def test_fallback_flags_survive_a_save_and_a_restart():
    board, m, d = _meter()
    d.writer("C.90.2", "87654321", True)
    m.settings.flush()
    off, seqs = _config_slots(board)
    board.nor.image[off + (0 if seqs[0] > seqs[1] else 1) * 4096 + 40] ^= 0x04
    m = d = None  # one meter at a time (a device-sized heap, tools/emu)
    board2, m2, d2 = _meter(board)
    d2.writer("C.90.1", "30", True)  # any later save writes over the damaged copy ...
    m2.shutdown()
    m2 = d2 = None
    board3, m3, d3 = _meter(board2)
    assert m3.settings.status == "ok", m3.settings.status
    assert m3.status.error_flags() & 0x42 == 0x42, "... and the flags stay latched"
    assert Port(d3, events.SRC_OPTICAL).prog("00000000") == _err(ER_SEALED)
    d3.writer("C.90.2", "55555555", True)
    d3.executor("C.91.0", "", True)
    m3.shutdown()
    m3 = d3 = None
    board4, m4, d4 = _meter(board3)
    assert not m4.status.error_flags() & 0x42 and m4.settings.password_trusted
    assert Port(d4, events.SRC_OPTICAL).prog("55555555") == iec.ACK_MSG


def test_blank_configuration_after_use_is_a_fallback():
    board, m, d = _meter()
    d.writer("C.90.2", "87654321", True)
    m.shutdown()  # registers committed: the journal shows the meter was used
    off = board.flash_layout["config"][0]
    board.nor.erase(off)
    board.nor.erase(off + 4096)
    del m, d  # (one meter at a time, tools/emu)
    board2, m2, d2 = _meter(board)
    assert m2.settings.status == "blank -> defaults"
    assert m2.status.error_flags() & 0x42 == 0x42, hex(m2.status.error_flags())
    assert Port(d2, events.SRC_OPTICAL).prog("00000000") == _err(ER_SEALED)
    assert _persisted(m2, events.CONFIG_FALLBACK, events.LOG_SECURITY)
    del board, board2, m2, d2
    fresh_board, fresh, fd = _meter()  # a new meter: blank is simply the first boot
    assert not fresh.status.error_flags() & 0x42 and fresh.settings.password_trusted


def test_boot_reads_a_full_security_log_record_by_record():
    # A flood of wrong passwords fills the security log; at each boot the lockout is restored
    # from it. That once built a list of every record (two tuples each), so the boot's peak
    # heap grew with the log (a MemoryError at boot in the emulated Cortex-M3's 192 KiB heap,
    # tools/emu). Now the records are read one at a time.
    from ports.iec import IecMap

    board, m, _d = _meter()
    t = board.clock.time() - 100000
    peaks = []
    for n in (0, 700):
        for i in range(n):
            m.events.persist(t + i, events.WRONG_PASSWORD, 1 + i % 2, events.SRC_OPTICAL)
        kept = len(m.events.persisted(events.LOG_SECURITY))
        _r, peak = _peak_bytes(lambda: IecMap(m.catalogue, m.settings, m._seal_open,
                                              board.clock, m.log, m.events))
        peaks.append((kept, peak))
    assert peaks[1][0] >= 150, "the log holds the flood: %r" % peaks
    assert peaks[0][1] is None or peaks[1][1] - peaks[0][1] < 4096, peaks


def _peak_bytes(fn):
    """(fn(), peak bytes allocated meanwhile) under CPython (tracemalloc); peak None elsewhere
    (there the emulated cores check the boot at device heap sizes)."""
    try:
        import tracemalloc
    except ImportError:
        return fn(), None
    tracemalloc.start()
    try:
        r = fn()
        return r, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_old_event_partition_is_read_not_misread():
    # an events partition written by b9d8131: one ring over all 8 sectors, 12-byte records
    # <IHHi (t, code, spare, value), RingLog tag 0
    import struct

    from flashstore import ringlog
    from flashstore.flash import Partition

    o = Options()
    o.quiet = True
    o.serial = "12345678"
    board = SimBoard(o, trace=StepTrace([(0, 1000000, 0)]))
    off, ln = board.flash_layout["events"]
    old = ringlog.RingLog(Partition(board.flash, off, ln), 12)
    old.mount()
    for i in range(900):  # fills every sector, wraps once
        code = (events.WRONG_PASSWORD, events.PROG_LOCKED, events.SEALED_REFUSED)[i % 3]
        old.append(struct.pack("<IHHi", 500000000 + i, code, 0, 0))
    board2, m, d = _meter(board)
    legacy = 0
    for e in m.events.iter_persisted():  # (a list of them all is 100 KB on a 32-bit core)
        if e[6]:
            legacy += 1
            assert e[1] in (13, 14, 15) and e[2] == 0 and e[3] == 0 and e[4] == "", e
    assert legacy > 300, legacy
    assert not d.lockout.remaining(board2.clock.time()) and d.lockout.failures == 0, \
        "old records without values never lock the meter"
    assert Port(d, events.SRC_OPTICAL).prog() == iec.ACK_MSG
    assert any(not e[6] and e[1] == events.PROG_ENTER for e in m.events.iter_persisted()), \
        "new records after the old ones"


def test_acknowledging_a_fallback_writes_both_copies():
    board, m, d = _meter()
    d.writer("C.90.2", "87654321", True)
    m.settings.flush()
    off, _ = _config_slots(board)
    for i in (0, 1):
        board.nor.image[off + i * 4096 + 30] ^= 0x10
    del m, d  # power cut: that meter's RAM is gone (one meter at a time, tools/emu)
    board2, m2, d2 = _meter(board)
    board2.seal.set_input(1)
    opt = Port(d2, events.SRC_OPTICAL)
    assert opt.prog("00000000") == iec.ACK_MSG, "factory password with the seal open"
    assert opt.x(_cmd("E", 2, "C.91.0()")) == iec.ACK_MSG
    for s in range(1, 200):  # the meter's once-a-second tick
        m2.settings.tick(s)
    del m2, d2, opt  # power cut
    board3, m3, d3 = _meter(board2)
    assert m3.settings.status == "ok" and m3.settings.store.copies == 2, \
        m3.settings.store.detail
    assert not m3.status.error_flags() & ERR_CONFIG
    assert m3.status.error_flags() & ERR_SECURITY, "until a new password is set"
