"""Streaming reader of load traces for the virtual board (MicroPython and CPython).

A trace is a CSV text file::

    t_s,p_w,q_var
    0,395,-34
    900,1143,504

- header exactly ``t_s,p_w,q_var`` (a trailing ``\\r`` is tolerated on every line, and a
  UTF-8 byte-order mark before the header, as spreadsheets write it, is skipped);
- each row: time in seconds from the start of the run, active power in W (> 0 import,
  < 0 export), reactive power in var (> 0 inductive, < 0 capacitive);
- each field a decimal number: optional ``+``/``-``, digits, optional ``.`` and digits, no
  spaces or exponents (``-12``, ``4.6``, ``.5``, ``3.``);
- ``t_s`` >= 0 and strictly increasing; at least one row;
- lines of at most ``MAX_LINE`` (200) characters (so ``/dev/zero`` or a file without line
  ends is refused by name and line instead of being read into RAM).

A row's power holds from its time until the next row's time; the last row holds for ever.
Before the first row's time the power is 0. Values are turned into integer milli-units
(ms, mW, mvar) with integer arithmetic only; digits beyond the third decimal are truncated
towards zero (``1.2349`` -> 1234, ``-1.2349`` -> -1234), and ``t_s`` is compared after that
truncation, so two rows less than 1 ms apart are "not increasing".

The file is never held in memory: the constructor validates it in one streaming pass and
:meth:`LoadTrace.at` reads forward one row at a time (one line buffer, a few small objects), so
a year at 15-min steps (35 136 rows, ~0.6 MB) fits a ~96 KB heap. On 32-bit ports times above
2**30 ms (~12.4 days) are long ints; the 64-bit unix port keeps them small.

Bundled traces (boards/sim/loads/, see README.md there): ``household_pv_2016.csv`` (default for
``make sim``), ``household_2016.csv``, ``four_quadrant.csv``.
"""

from micropython import const

HEADER = "t_s,p_w,q_var"
_NAMES = ("t_s", "p_w", "q_var")
_DIGITS = "0123456789"
_NFIELDS = const(3)
_FOREVER = const(1 << 61)  # "no next row": later than any t_ms (~73 million years)
MAX_LINE = const(200)  # characters per line: a file without line ends is refused, not read


def _shown(text):
    """``text`` quoted, with invisible and non-ASCII characters escaped (so that a header
    that only looks right says why it is not)."""
    out = []
    for c in text[:60]:
        out.append(c if " " <= c <= "~" else "\\x%02x" % ord(c) if ord(c) < 256 else
                   "\\u%04x" % ord(c))
    return "'" + "".join(out) + ("...'" if len(text) > 60 else "'")


class LoadError(ValueError):
    """A malformed trace file; the message is ``"<path>:<line>: <what>"`` (line 1-based)."""


def _parse_milli(text):
    """Return the decimal number ``text`` in thousandths as an int, without floats.

    ``"1234.5678"`` -> 1234567, ``"-0.5"`` -> -500, ``"7"`` -> 7000, ``".25"`` -> 250.
    Digits after the third decimal are truncated towards zero.
    Returns None for anything else (empty, spaces, ``_``, exponents, two dots, ...): no
    exception, so the caller's hot path needs no try block.
    """
    # Few locals on purpose: MicroPython puts a small frame on the C stack but a larger one on
    # the heap, which made this (hot) function several times slower; fractions go to _frac().
    s = text
    c = s[:1]
    if c == "-" or c == "+":
        s = s[1:]
    # strip(_DIGITS) leaves "" only if every character is an ASCII digit; int() alone would
    # also take " 12", "1_000" and (CPython) non-ASCII digits.
    if s and not s.strip(_DIGITS):
        v = int(s) * 1000
    else:
        v = _frac(s)
        if v is None:
            return None
    return -v if c == "-" else v


def _whole_milli(b):
    """``_parse_milli`` of an optionally signed whole number given as bytes; None for anything
    else (then the row is read as text)."""
    c = b[:1]
    if c == b"-" or c == b"+":
        b = b[1:]
    if b and not b.strip(b"0123456789"):
        v = int(b) * 1000
        return -v if c == b"-" else v
    return None


def _frac(s):
    """Unsigned ``whole.frac`` (either part may be empty, not both) in thousandths, or None."""
    dot = s.find(".")
    if dot < 0:
        return None
    whole = s[:dot]
    frac = s[dot + 1:]
    if not (whole or frac) or whole.strip(_DIGITS) or frac.strip(_DIGITS):
        return None
    v = int(whole) * 1000 if whole else 0
    if frac:
        v += int((frac + "00")[:3])
    return v


def _regular(path):
    # A trace is read twice (validated, then replayed): a fifo would block for a writer and
    # then fail to rewind, a device never ends. Directories are left to open() (EISDIR).
    import os

    try:
        kind = os.stat(path)[0] & 0o170000
    except OSError:
        return  # open() names the problem
    if kind not in (0o100000, 0o040000):
        raise LoadError("%s: not a regular file (a fifo, device or socket cannot be replayed)"
                        % path)


_BLOCK = const(1024)  # (the trace keeps < 4 KiB of heap: test_load)


class _Lines:
    """The trace file read in blocks of 1 KiB: ``readline(limit)`` as a text file's (up to
    ``limit`` characters, the line end included), ``seek(0)``, ``close()``. MicroPython's
    unix-port files are unbuffered: its text-mode readline makes one read() system call per
    byte (583 599 for the bundled trace, 0.6 s of CPU at every start). UnicodeError for bytes
    that are not UTF-8, as the text file raised."""

    def __init__(self, path):
        self._f = open(path, "rb")
        self._buf = b""
        self._pos = 0
        self._eof = False

    def _more(self):
        b = self._f.read(_BLOCK)
        if not b:
            self._eof = True
            return
        self._buf = self._buf[self._pos:] + b
        self._pos = 0

    def readline(self, limit):
        text = self.rawline(limit).decode()
        return text if len(text) <= limit else text[:limit]

    def rawline(self, limit):
        """The bytes that :meth:`readline` decodes (at least ``limit`` characters' worth)."""
        most = 4 * limit + 8  # bytes that hold at least ``limit`` characters
        while True:
            i = self._buf.find(b"\n", self._pos)
            if i >= 0 or self._eof or len(self._buf) - self._pos > most:
                break
            self._more()
        p = self._pos
        if i >= 0 and i - p < most:
            chunk = self._buf[p:i + 1]
            self._pos = i + 1
        else:
            end = len(self._buf) if len(self._buf) - p <= most else p + most
            if end < len(self._buf):  # (a line too long: cut at a character's start)
                while end > p and self._buf[end] & 0xC0 == 0x80:
                    end -= 1
            chunk = self._buf[p:end]
            self._pos = end
        return chunk

    def whole_lines(self):
        """The whole lines in the buffer (a block read first if it holds none) as one bytes
        object without the last line end, and its offset in the buffer; the read position
        moves past them. (None, 0) when no whole line is left (the end of the file, or a
        last line without a line end: :meth:`rawline` reads that)."""
        i = self._buf.find(b"\n", self._pos)
        if i < 0 and not self._eof:
            self._more()
        i = self._buf.rfind(b"\n", self._pos)
        if i < 0:
            return None, 0
        p = self._pos
        self._pos = i + 1
        return self._buf[p:i], p

    def seek(self, _pos):
        self._f.seek(0)
        self._buf = b""
        self._pos = 0
        self._eof = False

    def close(self):
        self._f.close()


class LoadTrace:
    """Power in force at a simulated time, read from a trace file (see the module docstring).

    ``LoadTrace(path)`` opens and validates the whole file (raises :class:`LoadError` naming the
    file and line, or the file when it is not a regular file, or OSError if it cannot be
    opened), then rewinds. Use :meth:`at` with
    non-decreasing times; :meth:`close` (or ``with``) releases the file.

    Attributes: ``path``; ``rows`` (number of data rows); ``first_ms`` (first row's time).
    """

    def __init__(self, path):
        self.path = path
        self._line = 0
        _regular(path)
        self._f = _Lines(path)
        try:
            self._validate()
            self._restart()
        except UnicodeError:
            self._f.close()
            raise LoadError("%s:%d: not a text file (bytes that are not UTF-8)"
                            % (path, self._line + 1)) from None
        except BaseException:
            self._f.close()
            raise

    # -- reading -------------------------------------------------------------------------

    def _error(self, what):
        return LoadError("%s:%d: %s" % (self.path, self._line, what))

    def _header(self):
        self._line = 0
        head = self._f.readline(MAX_LINE + 1)
        self._line = 1
        self._length(head)
        if not head:
            raise self._error("empty file, expected header '%s'" % HEADER)
        if head[:1] == "\ufeff":  # a UTF-8 byte-order mark (spreadsheets write one)
            head = head[1:]
        head = head.rstrip("\r\n")
        for c in head:
            if c < " " and c != "\t":
                raise self._error("not a text file (control bytes in the header: %s)"
                                  % _shown(head[:16]))
        if head != HEADER:
            raise self._error("header must be '%s', got %s" % (HEADER, _shown(head)))

    def _row(self):
        """Read the next data row as (t_ms, p_mw, q_mvar), or None at the end of the file."""
        # Kept small (see _parse_milli); every error message is built in _bad().
        raw = self._f.rawline(MAX_LINE + 1)
        if not raw:
            return None
        # the common row (three whole numbers, time increasing) straight from the bytes:
        # a str per field made the start-up of a run about half a second slower (every new
        # str is first looked up among the interned names); any other row, valid or not,
        # as text below (the same values, the same errors)
        if len(raw) <= MAX_LINE:
            f = raw.rstrip(b"\r\n").split(b",")
            if len(f) == _NFIELDS:
                t = _whole_milli(f[0])
                p = _whole_milli(f[1])
                q = _whole_milli(f[2])
                if t is not None and p is not None and q is not None and t > self._last_t:
                    self._line += 1
                    self._last_t = t
                    return (t, p, q)
        line = raw.decode()  # (UnicodeError: the constructor names the line after _line)
        if len(line) > MAX_LINE + 1:
            line = line[:MAX_LINE + 1]
        self._line += 1
        if len(line) > MAX_LINE:
            self._length(line)
        f = line.rstrip("\r\n").split(",")
        if len(f) != _NFIELDS:
            self._bad(f)
        t = _parse_milli(f[0])
        p = _parse_milli(f[1])
        q = _parse_milli(f[2])
        # _last_t starts at -1, so this also rejects a negative first time
        if t is None or p is None or q is None or t <= self._last_t:
            self._bad(f)
        self._last_t = t
        return (t, p, q)

    def _length(self, line):
        if len(line) > MAX_LINE and line[-1:] != "\n":
            raise self._error("line longer than %d characters (%s)"
                              % (MAX_LINE, _shown(line[:16])))

    def _bad(self, f):
        """Raise the LoadError that describes what is wrong with the fields f of this line."""
        if len(f) != _NFIELDS:
            raise self._error("expected %d fields (t_s,p_w,q_var), got %d" % (_NFIELDS, len(f)))
        for i in range(_NFIELDS):
            if _parse_milli(f[i]) is None:
                raise self._error("%s '%s' is not a number" % (_NAMES[i], f[i]))
        if _parse_milli(f[0]) < 0:
            raise self._error("t_s '%s' is negative" % f[0])
        raise self._error("t_s '%s' does not increase (previous row at %d ms)"
                          % (f[0], self._last_t))

    def _validate(self):
        self._header()
        self._last_t = -1
        first = self._row()
        if first is None:
            self._line += 1  # the line where the first row should be
            raise self._error("no data rows after the header")
        n = 1 + self._scan()
        self.rows = n
        self.first_ms = first[0]
        self._duration = self._last_t

    def _scan(self):
        # the rows after the first to the end (the constructor's check): the plain ones (three
        # whole numbers, no "+", time increasing: as _row takes them from the bytes, the same
        # values) a block of lines at a time; any other line, valid or not, through _row
        # from its start (its values, its errors, its line number). Returns the rows read.
        # (At every start: 35 135 rows of the bundled year, 3.4 us each through _row.)
        f = self._f
        n = 0
        while True:
            blk, p = f.whole_lines()
            if blk is None:
                if self._row() is None:
                    return n
                n += 1
                continue
            last = self._last_t
            k = 0  # plain rows taken from this block
            for ln in blk.split(b"\n"):
                t = -1
                c = ln.rstrip(b"\r")
                if len(ln) < MAX_LINE and not c.strip(b"0123456789,-"):
                    c = c.split(b",")
                    if len(c) == _NFIELDS:
                        try:
                            t = int(c[0]) * 1000
                            int(c[1])
                            int(c[2])
                        except ValueError:
                            t = -1
                if t <= last:  # (also t = -1: not plain)
                    self._line += k
                    self._last_t = last
                    n += k
                    f._pos = p  # back to this line's start
                    if self._row() is None:  # (not reached: a line end follows it)
                        return n
                    n += 1
                    break
                last = t
                k += 1
                p += len(ln) + 1
            else:
                self._line += k
                self._last_t = last
                n += k

    def _restart(self):
        """Seek to the first row: the segment before it is (0, 0) up to first_ms."""
        self._f.seek(0)
        self._header()
        self._last_t = -1
        self._next = self._row()
        if self._next is None:  # only if the file was emptied after validation
            self._line += 1
            raise self._error("no data rows after the header")
        self._lo = -1 << 40  # any time before the first row (a small int on 64-bit ports)
        self._hi = self._next[0]
        self._res = (0, 0, self._hi)

    # -- public --------------------------------------------------------------------------

    @property
    def duration_ms(self):
        """Time of the last row (ms); the last row's power holds from then on."""
        return self._duration

    def at(self, t_ms):
        """Return (p_mw, q_mvar, next_ms) in force at t_ms (int ms from the start of the run).

        p_mw / q_mvar are ints in mW / mvar; next_ms is the time (ms) at which the next row
        starts, or None once the last row is in force. Before the first row: (0, 0, first_ms).
        Times should not decrease between calls; a smaller time rewinds the file and reads
        forward again from the start (costly). Within the current row this is two compares and
        returns the same tuple object (no allocation). Raises LoadError if the file became
        malformed after validation, ValueError (both interpreters) if it was closed.
        """
        if self._lo <= t_ms < self._hi:
            return self._res
        if t_ms < self._lo:
            self._restart()
            if t_ms < self._hi:
                return self._res
        nxt = self._next
        while True:
            cur = nxt
            nxt = self._row()
            if nxt is None or t_ms < nxt[0]:
                break
        self._next = nxt
        self._lo = cur[0]
        if nxt is None:
            self._hi = _FOREVER
            self._res = (cur[1], cur[2], None)
        else:
            self._hi = nxt[0]
            self._res = (cur[1], cur[2], nxt[0])
        return self._res

    def close(self):
        """Close the file; further :meth:`at` calls that need to read raise ValueError."""
        self._f.close()

    def __enter__(self):
        return self

    def __exit__(self, *_exc):
        self.close()
