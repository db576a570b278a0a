"""lib/events: codes, the persisted record (format 2: source and subject), the flood
limit of the persisted logs (issue 7 items 13 and 14)."""

import events as E


def test_codes_fit_one_byte_and_have_names():
    codes = [getattr(E, k) for k in dir(E) if k.isupper() and isinstance(getattr(E, k), int)
             and k in ("POWER_UP", "CLOCK_SET") or k.startswith("REFUSED_")]
    for c in E.NAMES:
        assert 1 <= c <= 255, ("a code must fit the record's byte", c)
    for c in codes:
        assert c in E.NAMES, c
    for c in range(50, 70):
        assert c in E.NAMES, ("reserved range 50..79 is documented", c)
    assert E.log_of(E.SEAL_OPEN) == E.LOG_SECURITY and E.log_of(E.POWER_UP) == E.LOG_STANDARD
    assert E.log_of(E.WRONG_PASSWORD) == E.LOG_SECURITY
    assert E.log_of(E.REFUSED_NOT_WRITABLE) == E.LOG_STANDARD


def test_subject_packs_obis_codes_and_other_addresses():
    buf = bytearray(6)
    for text, kind, packed in (
        ("C.90.2", E.KIND_OBIS, (255, 0xF1, 96, 90, 2, 255)),
        ("0.3.0", E.KIND_OBIS, (255, 0xF0, 0, 3, 0, 255)),
        ("1-0:1.8.0*101", E.KIND_OBIS, (1, 0, 1, 8, 0, 101)),
        ("F.F.0", E.KIND_OBIS, (255, 0xF3, 97, 97, 0, 255)),
        ("P.98.1", E.KIND_OBIS, (255, 0xF1, 99, 98, 1, 255)),
        ("96.97.0", E.KIND_OBIS, (255, 0xF0, 96, 97, 0, 255)),
    ):
        assert E.pack_subject(buf, text) == kind, text
        assert tuple(buf) == packed, (text, tuple(buf))
        assert E.subject_text(kind, buf) == text, (text, E.subject_text(kind, buf))
    for text, shown in (("CCCCCCCCCC", "CCCCCC"), ("1.8", "1.8"), ("1.8.256", "1.8.25"),
                        ("X(", "X("), ("9.9.9.9", "9.9.9.")):
        assert E.pack_subject(buf, text) == E.KIND_TEXT, text
        assert E.subject_text(E.KIND_TEXT, buf) == shown, (text, E.subject_text(E.KIND_TEXT, buf))
    assert E.pack_subject(buf, None) == E.KIND_NONE and bytes(buf) == b"\xff" * 6
    assert E.subject_text(E.KIND_NONE, buf) == ""


def test_record_roundtrip_and_old_records():
    buf = bytearray(E.RECORD_SIZE)
    subj = bytearray(6)
    kind = E.pack_subject(subj, "C.90.2")
    v = (4 << 16) | E.command_value("W1")
    E.encode_record(buf, 504921600 + 7, E.REFUSED_NOT_WRITABLE, v, E.SRC_RS485 | kind, subj)
    t, code, value, src, s, summary = E.decode_record(E.FORMAT, bytes(buf))
    assert (t, code, value, src, s, summary) == (504921607, E.REFUSED_NOT_WRITABLE, v,
                                                 E.SRC_RS485, "C.90.2", False)
    assert value >> 16 == 4 and value & 0xFFFF == 0x5731, hex(value)
    E.encode_record(buf, 5, E.WRONG_PASSWORD, 9, E.SRC_OPTICAL | E.SUMMARY, b"\xff" * 6)
    assert E.decode_record(E.FORMAT, bytes(buf))[3:] == (E.SRC_OPTICAL, "", True)
    E.encode_record(buf, 5, E.CLOCK_SET, 2**40, 0, b"\xff" * 6)
    assert E.decode_record(E.FORMAT, bytes(buf))[2] == 0x7FFFFFFF, "clamped, never wrapped"
    import struct

    old = struct.pack("<IHHi", 100, E.SEALED_REFUSED, 0, 0)
    assert E.decode_record(0, old) == (100, E.SEALED_REFUSED, 0, E.SRC_METER, "", False)
    for tag, rec in ((0, bytes(16)), (2, bytes(12)), (7, bytes(16))):
        try:
            E.decode_record(tag, rec)
            raise AssertionError("misread %r" % ((tag, len(rec)),))
        except ValueError:
            pass


def test_event_log_keeps_source_and_subject():
    class Clock:
        def time(self):
            return 1000

    got = []
    log = E.EventLog(Clock(), capacity=4,
                     sink=lambda t, c, v, x, s, j: got.append((t, c, v, s, bytes(j))))
    log.log(E.REFUSED_NO_PASSWORD, 7, "x", E.SRC_OPTICAL, "C.90.2")
    log.log(E.POWER_UP)
    assert log.records()[0] == (1000, E.REFUSED_NO_PASSWORD, 7, E.SRC_OPTICAL, "C.90.2")
    assert log.records()[1] == (1000, E.POWER_UP, 0, E.SRC_METER, "")
    assert got[0][3] == E.SRC_OPTICAL | E.KIND_OBIS, got
    assert log.entries() == [(1000, E.REFUSED_NO_PASSWORD, 7), (1000, E.POWER_UP, 0)]
    for _ in range(5):
        log.log(E.SEAL_OPEN, 1, None, E.SRC_LOCAL)
    assert len(log) == 4 and log.count(E.SEAL_OPEN) == 5


def _flood(lim, code, n, t0, dt):
    """n events of `code` dt s apart from t0: (records written, summaries [(t, count)])."""
    written = 0
    summaries = []
    t = t0
    for _ in range(n):
        for _c, k, _s, _j in lim.due(t):
            summaries.append((t, k))
        if lim.admit(code, t):
            written += 1
        t += dt
    for _c, k, _s, _j in lim.due(t, force=True):
        summaries.append((t, k))
    return written, summaries


def test_rate_limit_accounts_for_every_event_with_few_records():
    lim = E.RateLimit(burst=3, window_s=60, max_window_s=86400)
    written, summaries = _flood(lim, E.SEALED_REFUSED, 1054, 0, 0)  # all in one second
    assert written == 3 and summaries == [(0, 1051)], (written, summaries)
    # a sustained flood, one event every 2 s for two days
    lim = E.RateLimit(burst=3, window_s=60, max_window_s=86400)
    n = 2 * 86400 // 2
    written, summaries = _flood(lim, E.REFUSED_NOT_WRITABLE, n, 0, 2)
    total = written + sum(k for _t, k in summaries)
    assert total == n, ("every event accounted for", total, n)
    records = written + len(summaries)
    assert records <= 4 * 14, ("about (burst + 1) per window, windows doubling", records)
    day2 = [s for s in summaries if s[0] >= 86400 + 30000]
    assert len(day2) <= 2, ("one window a day once grown", summaries[-4:])


def test_rate_limit_codes_beyond_its_slots_share_the_last_one():
    # (the slots are found by a search since session 9, no 256-byte table: the same rule)
    lim = E.RateLimit(burst=1, window_s=60, slots=3)
    assert lim.admit(1, 0) and lim.admit(2, 0) and lim.admit(3, 0)
    assert lim.admit(4, 0), "a code beyond: the last slot, a new window"
    assert not lim.admit(3, 1) and not lim.admit(4, 2) and not lim.admit(1, 3)
    assert not lim.admit(2, 4) and not lim.admit(2, 5)
    assert (lim.pending(1), lim.pending(2), lim.pending(3), lim.pending(4)) == (1, 2, 2, 2)
    assert lim.pending(9) == 0 and lim.pending(256 + 2) == 2
    assert lim.admit(5, 6), "a fifth code: recorded; the last slot's count is kept"
    assert not lim.admit(3, 7) and lim.pending(4) == lim.pending(5) == 3
    # the last slot counted codes 3 and 4: its summary names neither (nor 5)
    assert sorted((c, k) for c, k, _s, _j in lim.due(60)) == [(1, 1), (2, 2),
                                                              (E.FLOOD_MIXED, 3)]
    assert lim.due(66) == []
    assert lim.admit(2, 61) and not lim.admit(2, 62) and lim.admit(4, 67)


def test_the_shared_slot_never_reports_a_flood_under_another_codes_name():
    # every slot busy (48 codes flooding in a day on a meter; 2 here): the codes beyond
    # share the last slot. A flood of one code there, then a new code: its summary was
    # written under the newest code's name (a wrong-password flood reported as clock sets).
    lim = E.RateLimit(burst=1, window_s=60, slots=2)
    t = 1000
    assert lim.admit(E.COVER_OPEN, t) and not lim.admit(E.COVER_OPEN, t + 1)
    assert lim.admit(E.WRONG_PASSWORD, t)
    for k in range(40):
        assert not lim.admit(E.WRONG_PASSWORD, t + 2 + k)
    assert lim.admit(E.CLOCK_SET, t + 45), "a new code's first event: recorded"
    assert not lim.admit(E.CLOCK_SET, t + 46)  # counted with the passwords
    out = sorted((c, k, j) for c, k, _s, j in lim.due(t + 60))
    assert out == [(E.COVER_OPEN, 1, b"\xff" * 6), (E.FLOOD_MIXED, 41, b"\xff" * 6)], out
    assert E.log_of(E.FLOOD_MIXED) == E.LOG_SECURITY and E.NAMES[E.FLOOD_MIXED]
    # one code alone in the shared slot keeps its name
    lim = E.RateLimit(burst=1, window_s=60, slots=2)
    assert lim.admit(E.COVER_OPEN, t) and not lim.admit(E.COVER_OPEN, t + 1)
    assert lim.admit(E.WRONG_PASSWORD, t) and not lim.admit(E.WRONG_PASSWORD, t + 1)
    assert sorted((c, k) for c, k, _s, _j in lim.due(t + 60)) == sorted([
        (E.COVER_OPEN, 1), (E.WRONG_PASSWORD, 1)])
    # mixed once: the next window of that slot, one code again, is named again
    lim = E.RateLimit(burst=1, window_s=60, slots=1)
    assert lim.admit(1, 0) and lim.admit(2, 1) and not lim.admit(1, 2)
    assert [(c, k) for c, k, _s, _j in lim.due(61)] == [(E.FLOOD_MIXED, 1)]
    assert lim.admit(2, 200) and not lim.admit(2, 201)
    assert [(c, k) for c, k, _s, _j in lim.due(10 ** 6)] == [(2, 1)]


def test_a_new_code_never_takes_another_codes_count_for_its_summary():
    # A long-running meter has seen more codes than the limit has slots (48 slots, about a
    # hundred codes). Every further code shared the last slot and took it over: the count
    # of a flood of the code there (wrong passwords) came out in a summary under the name
    # of the next new code (a clock set), and the flood was hidden. Now a new code takes
    # the slot of a code that is idle (its window over, nothing counted).
    lim = E.RateLimit(burst=1, window_s=60, slots=4)
    assert lim.admit(1, 0) and lim.admit(2, 0) and lim.admit(3, 0)  # weeks ago
    t = 86400 * 30
    assert lim.admit(E.WRONG_PASSWORD, t)  # the fourth code: the last slot
    for k in range(50):
        assert not lim.admit(E.WRONG_PASSWORD, t + 1 + k)
    assert lim.admit(E.CLOCK_SET, t + 55), "a new code, recorded"
    assert lim.pending(E.WRONG_PASSWORD) == 50 and lim.pending(E.CLOCK_SET) == 0
    assert [(c, k) for c, k, _s, _j in lim.due(t + 60)] == [(E.WRONG_PASSWORD, 50)]
    assert lim.pending(1) == 0 and lim.admit(1, t + 61), "code 1 gave its slot: a new one"
    assert not lim.admit(E.CLOCK_SET, t + 62) and lim.pending(E.CLOCK_SET) == 1
    assert [(c, k) for c, k, _s, _j in lim.due(t + 200)] == [(E.CLOCK_SET, 1)]
    # a code whose flood ended (its summary written) is idle once quiet for the longest
    # window after its own: every code that ever flooded kept its slot for good
    lim = E.RateLimit(burst=1, window_s=60, max_window_s=120, slots=2)
    assert lim.admit(E.SEAL_OPEN, 0) and not lim.admit(E.SEAL_OPEN, 1)
    assert [(c, k) for c, k, _s, _j in lim.due(60)] == [(E.SEAL_OPEN, 1)]
    assert lim.admit(E.WRONG_PASSWORD, 300) and not lim.admit(E.WRONG_PASSWORD, 301)
    assert lim.admit(E.CLOCK_SET, 330)
    assert [(c, k) for c, k, _s, _j in lim.due(360)] == [(E.WRONG_PASSWORD, 1)]


def test_rate_limit_windows_double_up_to_the_maximum():
    # (a doubling count per slot since session 9, not the window itself: the same windows)
    lim = E.RateLimit(burst=1, window_s=100, max_window_s=60)  # a first window above the cap
    assert lim.admit(1, 0) and not lim.admit(1, 1)
    assert lim.admit(1, 100) and not lim.admit(1, 101) and not lim.admit(1, 159)
    assert lim.admit(1, 160) and not lim.admit(1, 161) and lim.admit(1, 220), "capped at 60 s"
    lim = E.RateLimit(burst=1, window_s=60, max_window_s=1000)
    t = 0
    for w in (60, 120, 240, 480, 960, 1000, 1000):
        assert lim.admit(2, t) and not lim.admit(2, t + 1) and not lim.admit(2, t + w - 1), w
        t += w
    assert lim.next_due(t - 1) == t and lim.pending(2) == 2 * 7


def test_rate_limit_per_code_and_quiet_resets_window():
    lim = E.RateLimit(burst=2, window_s=60, burst_for={E.WRONG_PASSWORD: 5})
    assert [lim.admit(E.WRONG_PASSWORD, 0) for _ in range(6)] == [True] * 5 + [False]
    assert [lim.admit(E.SEAL_OPEN, 0) for _ in range(3)] == [True, True, False], "own window"
    assert lim.due(30) == [], "window still open"
    due = lim.due(60)
    assert sorted((c, k) for c, k, _s, _j in due) == sorted([(E.SEAL_OPEN, 1),
                                                            (E.WRONG_PASSWORD, 1)])
    assert lim.due(61) == [], "each summary once"

    def adm(t):  # as the firmware's sink does: due summaries first
        lim.due(t)
        return lim.admit(E.SEAL_OPEN, t)

    assert adm(70) and adm(70)
    assert not adm(70 + 119), "the window after a flood is twice as long"
    assert adm(70 + 120) and adm(70 + 120)
    assert not adm(70 + 120 + 239), "and the next one twice again (240 s)"
    t = 70 + 120 + 240
    assert adm(t), "a window of 480 s without suppression..."
    t += 480
    assert adm(t) and adm(t) and not adm(t + 1), "...then the base window again"
    assert adm(t + 60)
    assert adm(t - 1000), "clock set back: a new window"


def test_names_answer_like_a_dict():
    # NAMES and IDIS_CODES are constant tuples of pairs behind a Table (RAM, issue 12): the
    # dict API their readers use (get, [], in, len, iteration over the codes)
    n = E.NAMES
    assert n.get(E.POWER_UP) == "power up" and n[E.CLOCK_SET] == "clock set"
    assert n.get(254) is None and n.get(254, "event 254") == "event 254"
    assert E.POWER_FAIL in n and 254 not in n
    try:
        n[254]
        raise AssertionError("no KeyError")
    except KeyError:
        pass
    codes = list(n)
    assert len(codes) == len(n) == len(set(codes)), "one name per code"
    assert E.idis_code(E.POWER_FAIL) == 1 and E.idis_code(E.UPLINK_KEY_CHANGED) == 48
    assert E.idis_code(E.NO_LOAD_START) == 128 + E.NO_LOAD_START
    assert E.idis_log(E.MAGNET_ON) == E.IDIS_FRAUD and E.idis_log(E.OVER_RANGE_END) == 4
    assert E.idis_log(E.PROG_ENTER) == E.IDIS_COMMUNICATION
    assert E.idis_log(E.POWER_UP) == E.IDIS_STANDARD


def test_rate_limit_with_the_rtc_past_2068():
    # RTC seconds >= 2**31 (2068-01-19 on; the clock is settable to 2099): the window starts
    # were kept in array("i"): OverflowError at the first event on CPython, and on
    # MicroPython a wrapped (negative) start, so that every event opened a new window and a
    # flood was written record by record (no summaries)
    for t0 in (2**31 - 30, 2**31 + 5, 3155760000 - 3 * 86400):
        lim = E.RateLimit(burst=3, window_s=60, max_window_s=86400)
        written, summaries = _flood(lim, E.SEALED_REFUSED, 1054, t0, 0)  # in one second
        assert written == 3 and summaries == [(t0, 1051)], (t0, written, summaries)
        lim = E.RateLimit(burst=3, window_s=60, max_window_s=86400)
        n = 2 * 86400 // 2
        written, summaries = _flood(lim, E.REFUSED_NOT_WRITABLE, n, t0, 2)
        assert written + sum(k for _t, k in summaries) == n
        assert written + len(summaries) <= 4 * 14, (t0, written, len(summaries))
    # a clock set back ends the window
    lim = E.RateLimit(burst=1, window_s=60)
    assert lim.admit(E.SEAL_OPEN, 2**31 + 100) and not lim.admit(E.SEAL_OPEN, 2**31 + 101)
    assert lim.admit(E.SEAL_OPEN, 2**31 + 50), "clock set back: a new window"
