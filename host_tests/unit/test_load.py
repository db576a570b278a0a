"""boards/sim/load.py: trace file validation, exact milli-unit parsing, streaming lookups, and
the bundled traces in boards/sim/loads/. Runs under pytest and tools/mptest.py (MicroPython)."""

import gc
import os

from micropython import heap_lock, heap_unlock

from boards.sim.load import LoadError, LoadTrace, _parse_milli

_ROOT = "/".join(__file__.split("/")[:-3]) or "."
_LOADS = _ROOT + "/boards/sim/loads/"
_HEAD = "t_s,p_w,q_var\n"
_YEAR_ROWS = 35136  # 366 days x 96 quarter hours
_STEP_MS = 900000


def _tmp_path():
    # Unique per call without tempfile (MicroPython has os.urandom but no tempfile).
    return "/tmp/test_load_%s.csv" % "".join("%02x" % b for b in os.urandom(8))


def _write(text):
    """A temporary file holding ``text``: a str, or a list of str and (str, count) parts, a
    part repeated ``count`` times written in 4 KiB pieces (never built whole in RAM)."""
    path = _tmp_path()
    with open(path, "w") as f:
        for part in [text] if isinstance(text, str) else text:
            if isinstance(part, str):
                f.write(part)
                continue
            piece, n = part
            chunk = piece * (4096 // len(piece))
            while n > 0:
                k = min(n, len(chunk) // len(piece))
                f.write(chunk if k * len(piece) == len(chunk) else piece * k)
                n -= k
    return path


def _remove(path):
    try:
        os.remove(path)
    except OSError:
        pass


def _open(text):
    """(trace, path) for a trace file holding text; the caller removes path."""
    path = _write(text)
    try:
        return LoadTrace(path), path
    except BaseException:
        _remove(path)
        raise


def _error_of(text):
    """The LoadError message for text (fails if the file is accepted), and the path used."""
    path = _write(text)
    try:
        try:
            LoadTrace(path).close()
        except LoadError as e:
            msg = str(e)
            assert msg.startswith(path + ":"), "message names the file: %r" % msg
            return msg
        assert False, "accepted malformed file %r" % text
    finally:
        _remove(path)


def test_parse_milli_exact():
    cases = (
        ("1234.5678", 1234567), ("-1234.5678", -1234567), ("4.6", 4600), ("0.001", 1),
        ("0.0009", 0), ("-0.0015", -1), ("+7", 7000), ("7", 7000), (".5", 500), ("5.", 5000),
        ("-0", 0), ("00012", 12000), ("31622400", 31622400000),
        ("123456789012.345", 123456789012345), ("-2.05", -2050),
    )
    for text, want in cases:
        got = _parse_milli(text)
        assert got == want, "%r -> %r, want %r" % (text, got, want)
        assert type(got) is int, "%r gives %r, not an int" % (text, type(got))


def test_parse_milli_rejects():
    for text in ("", "-", "+", ".", "-.", "abc", "1e3", "1_000", " 12", "12 ", "1.2.3", "--1",
                 "0x10", "1,5", "\u0661\u0662", "nan", "inf", "1.-5", "12a", "+-1"):
        assert _parse_milli(text) is None, "%r should not parse" % text


def test_valid_file_and_lookups():
    tr, path = _open(_HEAD + "0,100,-50\n10,-2.5,0.0015\n25.5,3000,1500\n")
    try:
        assert tr.rows == 3, "rows %r" % tr.rows
        assert tr.first_ms == 0, "first_ms %r" % tr.first_ms
        assert tr.duration_ms == 25500, "duration_ms %r" % tr.duration_ms
        want = (
            (0, (100000, -50000, 10000)), (9999, (100000, -50000, 10000)),
            (10000, (-2500, 1, 25500)), (25499, (-2500, 1, 25500)),
            (25500, (3000000, 1500000, None)), (10 ** 12, (3000000, 1500000, None)),
        )
        for t, w in want:
            got = tr.at(t)
            assert got == w, "at(%d) = %r, want %r" % (t, got, w)
    finally:
        tr.close()
        _remove(path)


def test_skipping_rows_and_rewind():
    tr, path = _open(_HEAD + "0,1,0\n1,2,0\n2,3,0\n3,4,0\n")
    try:
        assert tr.at(2500) == (3000, 0, 3000), "jump over rows: %r" % (tr.at(2500),)
        assert tr.at(0) == (1000, 0, 1000), "rewind to 0: %r" % (tr.at(0),)
        assert tr.at(1000) == (2000, 0, 2000), "forward after rewind: %r" % (tr.at(1000),)
        assert tr.at(999999) == (4000, 0, None), "last row: %r" % (tr.at(999999),)
        assert tr.at(1500) == (2000, 0, 2000), "rewind to the middle: %r" % (tr.at(1500),)
    finally:
        tr.close()
        _remove(path)


def test_before_first_row_is_zero():
    tr, path = _open(_HEAD + "10,500,200\n20,600,300\n")
    try:
        assert tr.first_ms == 10000, "first_ms %r" % tr.first_ms
        for t in (0, 1, 9999):
            assert tr.at(t) == (0, 0, 10000), "at(%d) = %r" % (t, tr.at(t))
        assert tr.at(10000) == (500000, 200000, 20000), "at first row: %r" % (tr.at(10000),)
    finally:
        tr.close()
        _remove(path)


def test_single_row_holds_for_ever():
    tr, path = _open(_HEAD + "0,42,-7")  # no final newline
    try:
        assert tr.rows == 1 and tr.duration_ms == 0, "rows %r dur %r" % (tr.rows, tr.duration_ms)
        for t in (0, 1, 86400000, 10 ** 13):
            assert tr.at(t) == (42000, -7000, None), "at(%d) = %r" % (t, tr.at(t))
    finally:
        tr.close()
        _remove(path)


def test_crlf_lines_accepted_and_context_manager():
    path = _write("t_s,p_w,q_var\r\n0,1,2\r\n5,3,4\r\n")
    try:
        with LoadTrace(path) as tr:
            assert tr.at(0) == (1000, 2000, 5000), "crlf row 1: %r" % (tr.at(0),)
            assert tr.at(5000) == (3000, 4000, None), "crlf row 2: %r" % (tr.at(5000),)
        try:
            tr.at(0)  # rewinds: needs the closed file
        except ValueError:
            pass
        else:
            assert False, "closed trace still reads"
    finally:
        _remove(path)


def test_within_row_is_allocation_free():
    tr, path = _open(_HEAD + "0,1,2\n1000,3,4\n")
    try:
        first = tr.at(5)
        heap_lock()
        try:
            again = tr.at(6)
            later = tr.at(999999)
        finally:
            heap_unlock()
        assert again is first and later is first, "same tuple within a row"
    finally:
        tr.close()
        _remove(path)


def _expect(text, line, *parts):
    msg = _error_of(text)
    assert (":%d:" % line) in msg, "want line %d in %r" % (line, msg)
    for p in parts:
        assert p in msg, "want %r in %r" % (p, msg)


def test_errors_name_the_line():
    _expect("", 1, "empty")
    _expect("time,p,q\n0,1,2\n", 1, "header")
    _expect("t_s, p_w, q_var\n0,1,2\n", 1, "header")
    _expect(_HEAD, 2, "no data rows")
    _expect(_HEAD + "0,1,2\n5,1\n", 3, "fields")
    _expect(_HEAD + "0,1,2\n5,1,2\n7,1,2,3\n", 4, "fields")
    _expect(_HEAD + "0,1,2\n\n9,1,2\n", 3, "fields")
    _expect(_HEAD + "0,1,2\n5,1,2\n7,1,2\n9,abc,2\n", 5, "p_w 'abc' is not a number")
    _expect(_HEAD + "x,1,2\n", 2, "t_s 'x' is not a number")
    _expect(_HEAD + "0,1,2\n5,1,1e3\n", 3, "q_var '1e3' is not a number")
    _expect(_HEAD + "0,1,2\n5,1, 2\n", 3, "q_var ' 2' is not a number")
    _expect(_HEAD + "0,1,2\n5,1,2\n5,1,2\n", 4, "does not increase")
    _expect(_HEAD + "0,1,2\n5,1,2\n4,1,2\n", 4, "does not increase")
    _expect(_HEAD + "0,1,2\n0.0001,1,2\n", 3, "does not increase")  # same ms after truncation
    _expect(_HEAD + "-1,1,2\n", 2, "negative")


def test_load_error_is_value_error():
    assert issubclass(LoadError, ValueError), "LoadError must subclass ValueError"


def test_bundled_household_pv_year():
    tr = LoadTrace(_LOADS + "household_pv_2016.csv")
    try:
        assert tr.rows == _YEAR_ROWS, "rows %d" % tr.rows
        assert tr.first_ms == 0, "first_ms %d" % tr.first_ms
        assert tr.duration_ms == (_YEAR_ROWS - 1) * _STEP_MS, "duration %d" % tr.duration_ms
        t = 0
        n = 0
        peak = low = 0
        export_mws = 0
        noon = noon_export = 0
        while t is not None:
            p, q, nxt = tr.at(t)
            n += 1
            assert nxt is None or nxt - t == _STEP_MS, "gap at %d ms: next %r" % (t, nxt)
            peak = max(peak, p)
            low = min(low, p)
            if p < 0:
                export_mws -= p * (_STEP_MS // 1000)
            day = t // 86400000
            hour = t % 86400000 // 3600000  # CET
            if 153 <= day < 244 and 10 <= hour < 13:  # June-August, 11:00-14:00 CEST
                noon += 1
                if p < 0:
                    noon_export += 1
            t = nxt
        assert n == _YEAR_ROWS, "stepped %d rows" % n
        assert 3000000 <= peak <= 6500000, "net peak %d mW" % peak
        assert low < -1500000, "largest export only %d mW" % low
        assert noon_export * 2 > noon, "export at summer midday in %d of %d rows" % (
            noon_export, noon)
        kwh = export_mws // 3600000000
        assert 500 <= kwh <= 5000, "annual export %d kWh" % kwh
    finally:
        tr.close()


def test_bundled_household_year():
    tr = LoadTrace(_LOADS + "household_2016.csv")
    try:
        assert tr.rows == _YEAR_ROWS, "rows %d" % tr.rows
        t = 0
        peak = 0
        low = None
        import_mws = 0
        while t is not None:
            p, q, nxt = tr.at(t)
            peak = max(peak, p)
            low = p if low is None else min(low, p)
            import_mws += p * (_STEP_MS // 1000)
            t = nxt
        assert 5500000 <= peak <= 6500000, "household peak %d mW" % peak
        assert low > 0, "household alone never exports, min %d mW" % low
        kwh = import_mws // 3600000000
        assert 2000 <= kwh <= 8000, "annual consumption %d kWh" % kwh
    finally:
        tr.close()


def test_bundled_four_quadrant():
    tr = LoadTrace(_LOADS + "four_quadrant.csv")
    try:
        seen = set()
        zero = start = False
        t = 0
        while t is not None:
            p, q, nxt = tr.at(t)
            if p and q:
                seen.add((p > 0, q > 0))
            if p == 0 and q == 0:
                zero = True
            if 4000 <= p <= 5000 and q == 0:  # 20 mA at 230 V = 4.6 W
                start = True
            t = nxt
        assert len(seen) == 4, "quadrants visited: %r" % (seen,)
        assert zero, "no no-load period"
        assert start, "no starting-current period"
        assert tr.at(tr.duration_ms + 3600000)[:2] == (0, 0), "must end in no load"
    finally:
        tr.close()


def test_year_trace_heap_footprint():
    if not hasattr(gc, "mem_alloc"):  # CPython: nothing to measure
        return
    gc.collect()
    before = gc.mem_alloc()
    tr = LoadTrace(_LOADS + "household_pv_2016.csv")
    try:
        tr.at(200 * 86400000)
        gc.collect()
        used = gc.mem_alloc() - before
        assert used < 4096, "LoadTrace keeps %d bytes of heap" % used
    finally:
        tr.close()


def test_a_line_without_end_is_refused_not_read_whole():
    # `--load /dev/zero` (or a huge file with no newline) read its "first line" into RAM
    # until the unix port's heap ran out: MemoryError with a traceback. The 300 KB lines are
    # longer than the whole heap of the emulated Cortex-M3 (tools/emu): there, reading one
    # whole would fail
    _expect(["t_s,p_w,q_var", ("x", 300000)], 1, "longer than")
    _expect([_HEAD + "0,1,2\n5,", ("1", 300000), ",2\n"], 3, "longer than")
    tr, path = _open(_HEAD + "0,1.25000000000000000000000000000000000000000000000000,2\n")
    try:
        assert tr.rows == 1, "a long but reasonable row is still fine"
    finally:
        tr.close()
        _remove(path)


def test_the_trace_is_read_in_blocks_not_byte_by_byte():
    # MicroPython's unbuffered text file read one byte per system call (583 599 reads for the
    # bundled trace at every start); now 1 KiB blocks (issue 12)
    from boards.sim import load

    reads = [0]

    class Counting:
        def __init__(self, f):
            self.f = f

        def read(self, n=-1):
            reads[0] += 1
            return self.f.read(n)

        def readline(self, n=-1):
            reads[0] += 1  # (a text file's readline: one read per byte underneath)
            return self.f.readline(n)

        def seek(self, *a):
            return self.f.seek(*a)

        def close(self):
            return self.f.close()

    rows = 3000
    path = _tmp_path()
    with open(path, "w") as f:
        f.write("t_s,p_w,q_var\n")
        for k in range(rows):
            f.write("%d,2300.5,-100.25\n" % k)
    size = os.stat(path)[6]
    real = open
    load.open = lambda p, mode="r": Counting(real(p, mode))
    try:
        with LoadTrace(path) as t:
            assert t.rows == rows
            for k in range(0, 4000 * 1000, 997):
                t.at(k)
    finally:
        del load.open
        os.remove(path)
    # two passes (validation, then the run) of ~size / 1024 blocks each
    assert reads[0] <= 2 * (size // 1024 + 3), (reads[0], size)


def test_rows_read_from_bytes_keep_their_values_and_line_numbers():
    # rows of whole numbers are parsed from the bytes, others as text: the same values
    # (signs, leading zeros, fractions, CRLF) and every error names its own line (a row
    # that is not UTF-8 was named by the next line number once)
    t, path = _open("t_s,p_w,q_var\r\n0,+0100,-007\r\n1.5,2.25,-3\r\n3,-4,5\r\n")
    try:
        assert t.at(0) == (100000, -7000, 1500)
        assert t.at(1500) == (2250, -3000, 3000)
        assert t.at(3000) == (-4000, 5000, None)
    finally:
        t.close()
        _remove(path)
    path = _tmp_path()
    with open(path, "wb") as f:
        f.write(b"t_s,p_w,q_var\n0,100,0\n5,1\xe90,0\n")
    try:
        LoadTrace(path)
        raise AssertionError("accepted")
    except LoadError as e:
        assert ":3: not a text file" in str(e), str(e)
    finally:
        _remove(path)
    for text, line in (("t_s,p_w,q_var\n0,1,1\n0,2,2\n", 3), ("t_s,p_w,q_var\n0,1,1\n5,x,2\n", 3),
                       ("t_s,p_w,q_var\n0,1,1\n5,1\n7,1,1\n", 3)):
        msg = _error_of(text)
        assert (":%d:" % line) in msg, msg


class _RowByRow(LoadTrace):
    # the constructor's check one row at a time through _row (the reference of _scan)
    def _scan(self):
        n = 0
        while self._row() is not None:
            n += 1
        return n


def _outcome(cls, path):
    try:
        t = cls(path)
    except LoadError as e:
        return "error", str(e)
    try:
        return "ok", t.rows, t.first_ms, t.duration_ms, [t.at(k * 7000) for k in range(0, 400, 13)]
    finally:
        t.close()


def test_the_block_check_agrees_with_the_row_check():
    # the constructor checks plain rows a block of lines at a time (_scan) and every other
    # line through _row: the same rows, values, errors and line numbers as _row alone, for
    # an odd line (valid or not) first, inside a block, around a block's end and last
    odd = ("+T,5,5", "T.5,5,5", "T,+5,5", "T,5,-0", "T,005,5", "T,5,5\r\r", "00T,5,5", "",
           "\r", "T,5", "T,5,5,5", "T-,5,5", "--T,5,5", "-,5,5", "T,-,5", "T,5,5-", "T,,5",
           "1,5,5", "P,5,5", "-T,5,5", "T,5,5 ", "1_0,5,5", "T,5,e5", "T,5,\xe9", "L198", "L199",
           "L200")
    for where in (1, 50, 85, 86, 87, 119):
        for o in odd:
            rows = ["%d,%d,%d" % (k * 7, k % 50 - 25, k * 3) for k in range(120)]
            t = str(where * 7 - 2)  # between the rows around it
            if o.startswith("L"):  # a line of that many characters, its end left out
                o = t + ",5," + "9" * (int(o[1:]) - len(t) - 3)
            rows[where] = o.replace("T", t).replace("P", str(where * 7 - 7))
            for end in ("\n", ""):
                path = _write(_HEAD + "\n".join(rows) + end)
                try:
                    got = _outcome(LoadTrace, path)
                    want = _outcome(_RowByRow, path)
                    assert got == want, (where, o, end, got, want)
                finally:
                    _remove(path)
