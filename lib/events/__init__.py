# Meter event codes, the in-RAM event log and the persisted record.
"""Event log: (RTC seconds, code, value) entries in a fixed-size ring, oldest overwritten;
each entry also says where it came from (``src``) and what it concerned (``subject``).

Codes (DLMS-style event numbers are mapped in docs; these are the firmware's own, 1..255 so
that a code fits one byte of the persisted record):
"""

from micropython import const

POWER_UP = const(1)
METROLOGY_FAULT = const(2)  # ADE7953 missing / mis-clocked / lost configuration
METROLOGY_OK = const(3)  # ADE7953 (re)configured after a fault or at boot
CHIP_RESET = const(4)  # ADE7953 reset seen (RESET irq or CONFIG back to default)
ENERGY_OVERFLOW = const(5)  # an accumulator wrapped between two reads (value: LSB lost/fixed)
NO_LOAD_START = const(6)
NO_LOAD_END = const(7)
FLASH_BLANK = const(8)
FLASH_CORRUPT = const(9)
CONFIG_DEFAULTS = const(10)
PROG_ENTER = const(11)
PROG_EXIT = const(12)  # value: EXIT_* reason
WRONG_PASSWORD = const(13)  # value: consecutive wrong passwords (any port)
PROG_LOCKED = const(14)  # value: lockout length, s
SEALED_REFUSED = const(15)  # ER06; subject: the address (or "P1"), value: command
PARAM_CHANGED = const(16)  # subject: the parameter's OBIS code
TEST_MODE_ON = const(17)
TEST_MODE_OFF = const(18)
POWER_FAIL = const(19)
CLOCK_SET = const(20)
# 40..49: register storage (firmware/meter/storage.py)
STORAGE_RECOVERED = const(40)  # records salvaged from sectors with a damaged header (value: n)
STORAGE_FOREIGN = const(41)  # journal of another format: writes refused (value: schema, -1)
STORAGE_MIGRATED = const(42)  # journal of an older schema converted (value: old schema)
STORAGE_FORMATTED = const(43)  # foreign journal formatted by E2 C.91.8 (value: old schema;
# -2: the event logs)
STORAGE_WRITE_FAILED = const(44)  # a commit or erase failed (value: commit reason)
STORAGE_READBACK = const(45)  # a journal record did not read back (worn flash), written again
# (value: the partition offset of the slot that did not take)
ENERGY_IMPLAUSIBLE = const(21)  # interval dropped: counts beyond the chip's limit or
# |P|,|Q| > S (value: firmware/metering.DROP_*; a bus fault is METROLOGY_FAULT with the same)
OVER_RANGE_START = const(22)  # current / voltage / power beyond the measuring range (value: cause)
OVER_RANGE_END = const(23)  # over-range episode over (value: its length in s)
# 30..39: clock and RTC
CLOCK_INVALID = const(30)  # RTC not trusted at power-up (backup supply lost); text: why

# 50..79: local access, configuration and audit (issue 7 items 10-14)
PW_WHILE_LOCKED = const(50)  # P1 during a lockout (ER03); value: lockout seconds left
REFUSED_NO_PASSWORD = const(51)  # ER07: R1/W1/E2 without a valid P1; value: command
REFUSED_NOT_WRITABLE = const(52)  # ER04; subject: address; value: command
REFUSED_VALUE = const(53)  # ER05
REFUSED_UNKNOWN = const(54)  # ER01
REFUSED_UNSUPPORTED = const(55)  # ER08 (malformed or unsupported command)
REFUSED_FAILED = const(56)  # ER09 (or a callback's own error code)
SEAL_OPEN = const(57)
SEAL_CLOSED = const(58)
COVER_OPEN = const(59)
COVER_CLOSED = const(60)
TCOVER_OPEN = const(61)
TCOVER_CLOSED = const(62)
MAGNET_ON = const(63)
MAGNET_OFF = const(64)
NEUTRAL_IMBALANCE = const(65)  # value: (I - IN) in % of the larger current (signed)
NEUTRAL_OK = const(66)  # value: duration of the imbalance, s
CONFIG_FALLBACK = const(67)  # config from an older copy / a damaged copy; value: valid copies
SECURITY_FALLBACK = const(68)  # password not trusted: factory password needs the open seal
CONFIG_DEFERRED = const(69)  # configuration save held back by the wear budget; value: s
PROG_LOCK_KEPT = const(70)  # the latest lockout, re-recorded at power-up so that no flood can
# push it out of the ring: t = its start (not the time of writing), value = its length, s
FLOOD_MIXED = const(71)  # a flood summary of several codes at once (value: events counted):
# the flood limiter's shared slot (RateLimit: more codes active than slots) never names one

# 80..89: supervision of the firmware's tasks (issue 8; firmware/tasks/supervisor.py)
TASK_DIED = const(80)  # a task ended with an exception (or returned); value: its deaths so far
TASK_FAILED = const(81)  # a task died too often: not restarted, the watchdog resets the meter
# 90..99: the uplink (issue 11; firmware/uplink/)
UPLINK_DROPPED = const(90)  # outbox full: unacknowledged messages dropped (value: how many)
UPLINK_EVENTS_SKIPPED = const(91)  # an event flood: events not queued one by one (value: n)
UPLINK_SEQ_SKIPPED = const(92)  # the outbox was formatted or damaged: its seq goes on above the
# persisted floor (value: the numbers skipped, at most 2**30 - 1; no message carries them)

# 224..231: the audit trail of metrological and billing parameters (firmware/meter/audit.py)
AUDIT_FULL = const(224)  # no room left: further parameter changes refused (value: entries)
AUDIT_REFUSED = const(225)  # a change refused because the trail is full; subject: parameter
AUDIT_CLEARED = const(226)  # read out and cleared under the open seal (value: entries)

# 100..109: billing functions (issue 10 part A: firmware/meter/billing.py, tariffs.py)
BILLING_END = const(100)  # end of billing period closed (schedule); value: the new VZ
DEMAND_RESET = const(101)  # demand reset (E2 C.91.5, button): period closed; value: new VZ
DEMAND_RESET_REFUSED = const(102)  # demand reset within the lockout; value: seconds left
DST_CHANGED = const(103)  # DST began (value 1) or ended (0): IDIS 3
TOU_ACTIVATED = const(104)  # the passive tariff plan became active: IDIS 9
# 105..109: issue 10's remaining pieces (clock-set limit, tariff plan over IEC)
CLOCK_SET_REFUSED = const(105)  # W1 0.9.1/0.9.2 over the limit per period (seal closed);
# value: why (lib/billing/clocklimit: 1 sets used up, 2 total shift used up); subject: address
TOU_PROGRAMMED = const(106)  # a passive tariff plan installed over IEC (E2 C.92.9): IDIS 19;
# value: the plan's 31-bit CRC (firmware/meter/touprog.py)
TOU_REFUSED = const(107)  # a tariff plan piece or install refused (ER05); value: the address's
# last group (1 season .. 5 activation, 9 install); subject: the address
# 110..112: the concentrator, RS-485 bus master (firmware/uplink/concentrator.py); subject:
# the bus address's last 6 characters
CONC_NO_ANSWER = const(110)  # a bus meter not read (value: iec62056.client E_* code)
CONC_ANSWERS_AGAIN = const(111)  # a bus meter read again (value: failures in a row before)
CONC_OVERRUN = const(112)  # a polling cycle ran past the next slot (value: slots missed)
# 113..119: the uplink's security rules (firmware/uplink/task.py, concentrator.py)
UPLINK_TIME_REFUSED = const(113)  # a ``time`` command shifting the clock by more than
# uplink.task.TIME_SYNC_MAX_S (900 s): value: the shift asked (s, clamped to +-2**30 - 1)
UPLINK_CONFIG_N = const(114)  # an uplink ``config`` authenticated (MAC right, n fresh):
# value: its n, persisted before the change is made (the replay guard's state)
UPLINK_REPLAY = const(115)  # a ``config`` with a right MAC but an n not above the last
# accepted one (a replay): value: its n
CONC_SERIAL_REFUSED = const(116)  # a bus meter's reading not forwarded: its serial (C.1.0)
# differs from the one its address is bound to (value 1), is the concentrator's own (2) or
# is bound to another address (3); subject: the address's last 6 characters
UPLINK_REVERTED = const(117)  # a broker / APN change (C.93.1 / C.93.2) that opened no
# session within uplink.task.Uplink.broker_trial_s was undone: the last ones that did are
# set again; value: the trial's length (s)
UPLINK_KEY_CHANGED = const(118)  # the uplink key (C.93.3) written on a local port: value 1
# set, 0 cleared (the key itself is never logged); IDIS 48 "global key(s) changed"
CONC_SERIAL_BOUND = const(119)  # a bus address bound to the serial of its first good
# readout (uplink/concentrator.py, kept in the settings); value 0, subject: the address's
# last 6 characters; value N > 0: N bindings kept in RAM only (no room in the settings)

# PROG_EXIT values
EXIT_B0 = const(1)
EXIT_TIMEOUT = const(2)
EXIT_LINK = const(3)  # the link ended (TCP peer closed or replaced, bus connection lost)
EXIT_SIGN_ON = const(4)  # a sign-on request (any address) on the port
EXIT_IDLE = const(5)  # the line stayed idle beyond the port's rights limit



class Table:
    """A read-only mapping over a constant tuple of (key, value) pairs, e.g. ``NAMES``: ``get``,
    ``[]`` (KeyError), ``in``, ``len`` and iteration over the keys, like the dict it replaces
    (without its RAM: the pairs stay in flash when frozen). A linear search (~80 pairs: a
    readout, a message or a dump, never the metering step); allocates nothing but the
    iterator of a ``for`` over it."""

    def __init__(self, pairs):
        self.pairs = pairs

    def get(self, key, default=None):
        for k, v in self.pairs:
            if k == key:
                return v
        return default

    def __getitem__(self, key):
        for k, v in self.pairs:
            if k == key:
                return v
        raise KeyError(key)

    def __contains__(self, key):
        for k, _v in self.pairs:
            if k == key:
                return True
        return False

    def __len__(self):
        return len(self.pairs)

    def __iter__(self):
        for k, _v in self.pairs:
            yield k


# The name of each code (uplink messages, tools/events_dump.py): a constant tuple of (code,
# name) pairs, kept in flash when frozen (a dict literal is built in RAM at import: ~0.8 KB,
# issue 12), read through a Table, which answers like the dict it replaced.
NAMES = Table((
    (POWER_UP, "power up"), (METROLOGY_FAULT, "metrology fault"), (METROLOGY_OK, "metrology ok"),
    (CHIP_RESET, "metering chip reset"), (ENERGY_OVERFLOW, "energy register overflow"),
    (NO_LOAD_START, "no-load start"), (NO_LOAD_END, "no-load end"), (FLASH_BLANK, "flash blank"),
    (FLASH_CORRUPT, "flash record corrupt"), (CONFIG_DEFAULTS, "configuration defaults used"),
    (PROG_ENTER, "programming mode entered"), (PROG_EXIT, "programming mode left"),
    (WRONG_PASSWORD, "wrong password"), (PROG_LOCKED, "programming locked"),
    (SEALED_REFUSED, "refused: seal closed"), (PARAM_CHANGED, "parameter changed"),
    (TEST_MODE_ON, "test mode on"), (TEST_MODE_OFF, "test mode off"), (POWER_FAIL, "power fail"),
    (CLOCK_SET, "clock set"), (STORAGE_RECOVERED, "journal recovered from damaged sectors"),
    (STORAGE_FOREIGN, "journal of another format: writes refused"),
    (STORAGE_MIGRATED, "journal migrated from an older schema"),
    (STORAGE_FORMATTED, "journal formatted"), (STORAGE_WRITE_FAILED, "journal write failed"),
    (STORAGE_READBACK, "journal record did not read back: written again"),
    (ENERGY_IMPLAUSIBLE, "implausible energy dropped"), (OVER_RANGE_START, "over-range start"),
    (OVER_RANGE_END, "over-range end"), (CLOCK_INVALID, "clock invalid"),
    (PW_WHILE_LOCKED, "password during lockout"), (REFUSED_NO_PASSWORD, "refused: no password"),
    (REFUSED_NOT_WRITABLE, "refused: not writable"), (REFUSED_VALUE, "refused: bad value"),
    (REFUSED_UNKNOWN, "refused: unknown address"), (REFUSED_UNSUPPORTED, "refused: unsupported"),
    (REFUSED_FAILED, "refused: execution failed"), (SEAL_OPEN, "seal opened"),
    (SEAL_CLOSED, "seal closed"), (COVER_OPEN, "meter cover opened"),
    (COVER_CLOSED, "meter cover closed"), (TCOVER_OPEN, "terminal cover opened"),
    (TCOVER_CLOSED, "terminal cover closed"), (MAGNET_ON, "magnetic field detected"),
    (MAGNET_OFF, "magnetic field gone"), (NEUTRAL_IMBALANCE, "neutral current imbalance"),
    (NEUTRAL_OK, "neutral current balanced"), (CONFIG_FALLBACK, "configuration copy damaged"),
    (SECURITY_FALLBACK, "password not trusted"), (CONFIG_DEFERRED, "configuration save deferred"),
    (TASK_DIED, "task died"), (TASK_FAILED, "task failed: watchdog reset"),
    (PROG_LOCK_KEPT, "lockout carried over a restart"),
    (FLOOD_MIXED, "events of several codes counted"), (AUDIT_FULL, "audit trail full"),
    (AUDIT_REFUSED, "refused: audit trail full"), (AUDIT_CLEARED, "audit trail cleared"),
    (UPLINK_DROPPED, "uplink outbox full: oldest dropped"),
    (UPLINK_EVENTS_SKIPPED, "uplink: events not sent one by one"),
    (UPLINK_SEQ_SKIPPED, "uplink outbox lost: seq numbers skipped"),
    (BILLING_END, "end of billing period"), (DEMAND_RESET, "demand reset"),
    (DEMAND_RESET_REFUSED, "demand reset refused: lockout"), (DST_CHANGED, "DST change"),
    (TOU_ACTIVATED, "passive tariff plan activated"),
    (CLOCK_SET_REFUSED, "clock set refused: limit per period"),
    (TOU_PROGRAMMED, "passive tariff plan programmed"), (TOU_REFUSED, "tariff plan refused"),
    (CONC_NO_ANSWER, "bus meter not read"), (CONC_ANSWERS_AGAIN, "bus meter read again"),
    (CONC_OVERRUN, "bus polling cycle overrun"),
    (UPLINK_TIME_REFUSED, "uplink time sync refused: shift too large"),
    (UPLINK_CONFIG_N, "uplink config authenticated"),
    (UPLINK_REPLAY, "uplink config replay refused"),
    (CONC_SERIAL_REFUSED, "bus meter serial refused"),
    (UPLINK_REVERTED, "uplink broker/APN change undone: no session"),
    (UPLINK_KEY_CHANGED, "uplink key changed"), (CONC_SERIAL_BOUND, "bus meter serial bound"),
))

# Logs (IDIS-style split, docs/PERSISTENCE.md "Event logs"): each code goes to one log; the
# security log (fraud detection and the audit trail of legally relevant changes) is stored
# apart so that a flood in the standard log never overwrites it.
LOG_STANDARD = const(0)
LOG_SECURITY = const(1)
SECURITY_CODES = (
    PROG_ENTER, PROG_EXIT, WRONG_PASSWORD, PROG_LOCKED, SEALED_REFUSED, PARAM_CHANGED, CLOCK_SET,
    PW_WHILE_LOCKED, REFUSED_NO_PASSWORD, SEAL_OPEN, SEAL_CLOSED, COVER_OPEN, COVER_CLOSED,
    TCOVER_OPEN, TCOVER_CLOSED, MAGNET_ON, MAGNET_OFF, NEUTRAL_IMBALANCE, NEUTRAL_OK,
    CONFIG_FALLBACK, SECURITY_FALLBACK, PROG_LOCK_KEPT, FLOOD_MIXED, AUDIT_FULL, AUDIT_REFUSED,
    AUDIT_CLEARED, CLOCK_SET_REFUSED, TOU_PROGRAMMED, TOU_REFUSED, UPLINK_TIME_REFUSED,
    UPLINK_CONFIG_N, UPLINK_REPLAY, CONC_SERIAL_REFUSED, UPLINK_REVERTED, UPLINK_KEY_CHANGED,
    CONC_SERIAL_BOUND,
)


def log_spans(offset, length, sector_size):
    """Where the logs live in the ``events`` partition (byte offset, length): the standard log
    first, then the security log on 3/8 of the sectors (at least 2); a partition of fewer than
    5 sectors holds one ring for both."""
    n = length // sector_size
    if n < 5:
        return ((offset, length),)
    k = max(2, 3 * n // 8)
    return ((offset, (n - k) * sector_size), (offset + (n - k) * sector_size, k * sector_size))


def log_of(code):
    """LOG_SECURITY or LOG_STANDARD: the persisted log that keeps events of ``code``."""
    return LOG_SECURITY if code in SECURITY_CODES else LOG_STANDARD


# IDIS logs and event codes (billing reference D1/D2, Connexo IDIS event classes) for the
# logbook readout (R5 P.98, firmware/ports/iec.py): each of our codes is reported in one IDIS
# log (the E group of its profile 0.0.99.98.E; 97 = the power failure log 1.0.99.97.0, built
# from POWER_FAIL -> POWER_UP pairs with the duration) under an IDIS code; codes without an
# IDIS equivalent are reported as 128 + our code (IDIS leaves >= 128 to the manufacturer).
IDIS_STANDARD = const(0)
IDIS_FRAUD = const(1)
IDIS_DISCONNECTOR = const(2)
IDIS_POWER_QUALITY = const(4)
IDIS_COMMUNICATION = const(5)
IDIS_POWER_FAILURE = const(97)
IDIS_LOGS = (IDIS_STANDARD, IDIS_FRAUD, IDIS_DISCONNECTOR, IDIS_POWER_QUALITY,
             IDIS_COMMUNICATION, IDIS_POWER_FAILURE)
# (code, IDIS code) pairs: a constant tuple in flash, read through a Table (RAM, as NAMES)
IDIS_CODES = Table((
    (POWER_FAIL, 1), (POWER_UP, 2), (CLOCK_SET, 5), (CLOCK_INVALID, 6), (FLASH_CORRUPT, 14),
    (METROLOGY_FAULT, 16), (CHIP_RESET, 16), (ENERGY_IMPLAUSIBLE, 16), (TASK_FAILED, 15),
    (PARAM_CHANGED, 47), (CONFIG_DEFAULTS, 47), (TCOVER_OPEN, 40), (TCOVER_CLOSED, 41),
    (MAGNET_ON, 42), (MAGNET_OFF, 43), (COVER_OPEN, 44), (COVER_CLOSED, 45),
    (WRONG_PASSWORD, 46), (PW_WHILE_LOCKED, 46), (PROG_LOCKED, 46), (SEALED_REFUSED, 46),
    (DST_CHANGED, 3), (TOU_ACTIVATED, 9),
    (TOU_PROGRAMMED, 19),  # "passive TOU programmed"
    (UPLINK_KEY_CHANGED, 48),  # "global key(s) changed"
))


def idis_code(code):
    """The IDIS event code of our ``code`` (128 + code without an IDIS equivalent)."""
    return IDIS_CODES.get(code, code if code >= 128 else 128 + code)


def idis_log(code):
    """The IDIS log (IDIS_STANDARD, IDIS_FRAUD, IDIS_POWER_QUALITY, IDIS_COMMUNICATION) that
    reports our ``code`` (the disconnector log stays empty until a relay is fitted). The
    codes of each log are constant tuples in the function (in flash, no global: RAM)."""
    if code in (TCOVER_OPEN, TCOVER_CLOSED, MAGNET_ON, MAGNET_OFF, COVER_OPEN, COVER_CLOSED,
                WRONG_PASSWORD, PW_WHILE_LOCKED, PROG_LOCKED, SEALED_REFUSED, SEAL_OPEN,
                SEAL_CLOSED, NEUTRAL_IMBALANCE, NEUTRAL_OK, REFUSED_NO_PASSWORD,
                SECURITY_FALLBACK, PROG_LOCK_KEPT, UPLINK_REPLAY, CONC_SERIAL_REFUSED):
        return IDIS_FRAUD
    if code in (OVER_RANGE_START, OVER_RANGE_END):
        return IDIS_POWER_QUALITY
    if code in (PROG_ENTER, PROG_EXIT, REFUSED_NOT_WRITABLE, REFUSED_VALUE, REFUSED_UNKNOWN,
                REFUSED_UNSUPPORTED, REFUSED_FAILED):
        return IDIS_COMMUNICATION
    return IDIS_STANDARD


# Sources (bits 0-2 of the record's src byte)
SRC_METER = const(0)  # the meter itself (metering, storage, start-up)
SRC_OPTICAL = const(1)  # optical port (IEC 62056-21)
SRC_RS485 = const(2)  # RS-485 port (IEC 62056-21)
SRC_LOCAL = const(3)  # local inputs: seal, covers, magnet, keys
SRC_UPLINK = const(4)  # the uplink (MQTT command topic)
SRC_NAMES = ("meter", "optical", "rs485", "local", "uplink", "src5", "src6", "src7")
SUMMARY = const(0x08)  # src bit 3: value = occurrences not recorded one by one
KIND_NONE = const(0x00)  # src bits 4-5: subject kind
KIND_OBIS = const(0x10)
KIND_TEXT = const(0x20)
_KIND_MASK = const(0x30)

# Persisted record, format 2 (stored with RingLog tag FORMAT; tag 0 = the old 12-byte record
# ``<IHHi`` t, code, spare, value). 16 bytes, little-endian:
#   0 u32 t      RTC seconds since 2000-01-01 UTC
#   4 u8  code   event code 1..255
#   5 u8  src    bits 0-2 source (SRC_*), bit 3 SUMMARY, bits 4-5 subject kind (KIND_*)
#   6 6B  subject  KIND_OBIS: groups A B C D E F, one byte each, 255 = group not given;
#                  letters C F L P (IEC 62056-61 groups C and D) = 96 97 98 99; when A is
#                  not given (the usual reduced id C.D.E*F) B is 0xF0 | 1 (C was a letter)
#                  | 2 (D was a letter), so "F.F.0" and "P.98.1" read back exactly.
#                  KIND_TEXT: the first 6 characters of an address that is not an OBIS code
#                  (ASCII, 0-padded). KIND_NONE: 0xFF bytes.
#  12 i32 value
FORMAT = const(2)
RECORD_SIZE = const(16)
_RFMT = "<IBB6si"
_LETTERS = "CFLP"


def _group(s, letters):
    if len(s) == 1 and letters and s in _LETTERS:
        return 0x100 + 96 + _LETTERS.index(s)  # 0x100: was a letter
    if not 1 <= len(s) <= 3:
        return -1
    for ch in s:
        if ch < "0" or ch > "9":
            return -1
    v = int(s)
    return v if v <= 255 else -1


def pack_subject(buf, subject):
    """Write ``subject`` into the 6-byte ``buf``; return its KIND_*.

    subject: None; an OBIS code ``[A-B:]C.D.E[*F]`` (str) -> KIND_OBIS; any other str ->
    KIND_TEXT (its first 6 characters)."""
    for i in range(6):
        buf[i] = 0xFF
    if not subject:
        return KIND_NONE
    s = subject
    a = b = 255
    i = s.find(":")
    ok = True
    if i >= 0:
        ab = s[:i]
        s = s[i + 1:]
        j = ab.find("-")
        if j < 0:
            ok = False
        else:
            a = _group(ab[:j], False)
            b = _group(ab[j + 1:], False)
            ok = a >= 0 and b >= 0
    f = 255
    j = s.find("*")
    if ok and j >= 0:
        f = _group(s[j + 1:], False)
        s = s[:j]
        ok = f >= 0
    parts = s.split(".") if ok else ()
    if ok and len(parts) == 3:
        c = _group(parts[0], True)
        d = _group(parts[1], True)
        e = _group(parts[2], False)
        if c >= 0 and d >= 0 and e >= 0:
            if a == 255:
                b = 0xF0 | (1 if c > 255 else 0) | (2 if d > 255 else 0)
            buf[0] = a
            buf[1] = b
            buf[2] = c & 0xFF
            buf[3] = d & 0xFF
            buf[4] = e
            buf[5] = f
            return KIND_OBIS
    for i in range(6):
        ch = ord(subject[i]) if i < len(subject) else 0
        buf[i] = ch if 0x20 <= ch <= 0x7E else (0 if i >= len(subject) else 0x3F)
    return KIND_TEXT


def subject_text(kind, subj):
    """The text of a packed subject (see :func:`pack_subject`); '' for KIND_NONE."""
    if kind == KIND_OBIS:
        def g(v, letter):
            return _LETTERS[v - 96] if letter and 96 <= v <= 99 else str(v)

        out = ""
        if subj[0] != 255:
            out = "%d-%d:" % (subj[0], subj[1])
            lc, ld = True, False
        else:
            lc, ld = subj[1] & 1, subj[1] & 2
        out += "%s.%s.%d" % (g(subj[2], lc), g(subj[3], ld), subj[4])
        if subj[5] != 255:
            out += "*%d" % subj[5]
        return out
    if kind == KIND_TEXT:
        return "".join(chr(c) for c in subj if c)
    return ""


def command_value(cmd):
    """A command name such as 'W1' as the value of a refusal record (two ASCII characters,
    0x5731 for W1); 0 for ''."""
    if len(cmd) != 2:
        return 0
    return (ord(cmd[0]) << 8) | ord(cmd[1])


def encode_record(buf, t, code, value, src, subj):
    """Pack one event into the 16-byte ``buf`` (format 2, see above); ``subj``: 6 bytes."""
    import struct

    if value > 0x7FFFFFFF:
        value = 0x7FFFFFFF
    elif value < -0x7FFFFFFF:
        value = -0x7FFFFFFF
    struct.pack_into(_RFMT, buf, 0, t & 0xFFFFFFFF, code & 0xFF, src & 0xFF, bytes(subj), value)
    return buf


def decode_record(tag, rec):
    """(t, code, value, src, subject text, summary) of a persisted record; ``tag`` is its
    RingLog tag (FORMAT, or 0 for the old 12-byte ``<IHHi`` record: source and subject then
    unknown). Raises ValueError for an unknown format."""
    import struct

    if tag == FORMAT and len(rec) == RECORD_SIZE:
        t, code, src, subj, value = struct.unpack(_RFMT, rec)
        return (t, code, value, src & 7, subject_text(src & _KIND_MASK, subj),
                bool(src & SUMMARY))
    if tag == 0 and len(rec) == 12:
        t, code, _spare, value = struct.unpack("<IHHi", rec)
        return t, code, value, SRC_METER, "", False
    raise ValueError("event record format %d, %d bytes" % (tag, len(rec)))


class RateLimit:
    """Per-code flood limit for the persisted logs (RAM copies are never limited).

    Within a window the first ``burst`` events of a code are recorded one by one; further
    ones are only counted, and when the window has ended one summary record (same code,
    SUMMARY flag, value = the count) accounts for them. A window opens with the first event
    after the previous one ended; it lasts ``window_s`` seconds, twice the previous length when
    the previous window had to suppress events (at most ``max_window_s``). So a sustained flood
    of one code costs at most ``burst + 1`` records per window, and the windows grow to a day:
    about ``12 * (burst + 1)`` records on the first day of a flood and ``burst + 1`` a day
    after that. Times are RTC seconds (int); a clock set backwards ends the window.
    ``burst_for``: dict code -> burst overriding the default. State is preallocated for
    ``slots`` codes (a code beyond takes the slot of an idle code, else shares the last
    slot), so a flood allocates nothing that stays. A summary of the shared slot whose count
    holds events of more than one code is written under FLOOD_MIXED (in the security log),
    never under one of those codes: a flood is never reported under another code's name.
    """

    def __init__(self, burst=3, window_s=60, max_window_s=86400, burst_for=None, slots=48):
        from array import array

        self.burst = burst
        self.window_s = window_s
        self.max_window_s = max_window_s
        self.burst_for = burst_for if burst_for is not None else {}
        # a bit per code seen; its slot is found among the codes of the slots in use
        # (:meth:`_slot_of`: no 256-byte code -> slot table, RAM, issue 12)
        self._seen = bytearray(32)
        self._code = bytearray(slots)
        self._used = 0
        # window starts, RTC s: unsigned (2**31 is reached in 2068, the clock is settable to
        # 2099; array "i" overflowed there, and wrapped silently on MicroPython)
        self._start = array("I", [0] * slots)
        self._dbl = bytearray(slots)  # times the window doubled (:meth:`_window`)
        self._sup = array("i", [0] * slots)
        self._n = bytearray(slots)  # records in the window (saturates at 255)
        self._grow = bytearray(slots)  # the last window had to suppress
        self._src = bytearray(slots)
        self._subj = bytearray(6 * slots)
        self.suppressed = 0  # total counted and not recorded one by one (since boot)
        self._mix = 0  # the last (shared) slot's count holds events of more than one code

    def _slot_of(self, code):
        # the slot of a code seen before: its own, else the last one (which the codes beyond
        # ``slots`` share; only its code byte is the latest of them)
        c = self._code
        last = len(c) - 1
        for i in range(self._used if self._used < last else last):
            if c[i] == code:
                return i
        return last

    def _idle(self, now):
        # every slot taken: one whose code is idle (nothing counted and its window over; if
        # that window had to suppress, over for ``max_window_s`` more: a flood that paused
        # a day starts again at ``window_s``) is given to the new code; else the last one,
        # shared. (The shared slot's summary carries its newest code: sharing it while
        # another code's count waited relabelled that count, a flood of one code reported
        # under the next new code's name.)
        last = len(self._code) - 1
        for i in range(last + 1):
            if self._sup[i]:
                continue
            d = now - self._start[i]
            w = self._window(i)
            if d < 0 or d >= (w + self.max_window_s if self._grow[i] else w):
                if i < last:
                    c = self._code[i]
                    self._seen[c >> 3] &= ~(1 << (c & 7)) & 0xFF
                return i
        return last

    def _window(self, i):
        # slot i's window, s: ``window_s``, doubled _dbl[i] times up to ``max_window_s`` (a
        # byte per slot, not an int array: RAM, issue 12)
        k = self._dbl[i]
        if not k:
            return self.window_s
        w = self.window_s << k
        return w if w < self.max_window_s else self.max_window_s

    def pending(self, code):
        """Events of ``code`` counted and not yet in a summary record."""
        code &= 0xFF
        if not self._seen[code >> 3] & (1 << (code & 7)):
            return 0
        return self._sup[self._slot_of(code)]

    def admit(self, code, now, src=0, subj=None):
        """True: record this event now. False: it was counted for a summary. Summaries that
        became due are returned by :meth:`due` (call it first)."""
        code &= 0xFF
        if self._seen[code >> 3] & (1 << (code & 7)):
            i = self._slot_of(code)
        else:
            self._seen[code >> 3] |= 1 << (code & 7)
            i = self._used
            if i < len(self._code):
                self._used += 1
            else:
                i = self._idle(now)
                if self._sup[i]:  # the shared slot, another code's count waiting: kept
                    self._mix = 1  # (its summary is FLOOD_MIXED from now on)
                    return True
            self._code[i] = code
            self._start[i] = now if now > 0 else 0  # (RTC s; unsigned, see __init__)
            self._dbl[i] = 0
            self._n[i] = 1
            return True
        if now - self._start[i] >= self._window(i) or now < self._start[i]:
            # a new window; it doubles while the previous one had to suppress
            if self._grow[i] or self._sup[i]:
                k = self._dbl[i]
                if k == 0 or self._window(i) < self.max_window_s:
                    self._dbl[i] = k + 1
            else:
                self._dbl[i] = 0
            self._start[i] = now if now > 0 else 0
            self._n[i] = 1
            self._grow[i] = 0
            return True
        if self._n[i] < self.burst_for.get(code, self.burst):
            self._n[i] += 1
            return True
        self._sup[i] += 1
        if self._code[i] != code:  # (only the shared last slot holds other codes)
            self._mix = 1
        self._src[i] = src
        j = 6 * i
        for k in range(6):
            self._subj[j + k] = subj[k] if subj is not None else 0xFF
        self.suppressed += 1
        return False

    def any_due(self, now, force=False):
        """True if :meth:`due` would return a summary (allocation-free: the once-a-second
        check of firmware/meter/eventstore.py)."""
        for i in range(self._used):
            if self._sup[i] and (force or now - self._start[i] >= self._window(i)
                                 or now < self._start[i]):
                return True
        return False

    def next_due(self, now):
        """RTC second at which :meth:`due` next returns a summary (<= ``now``: already), or
        None while nothing is counted (the housekeeping task sleeps until then)."""
        best = None
        for i in range(self._used):
            if self._sup[i]:
                if now < self._start[i]:
                    return now  # (a clock set backwards ends the window)
                e = self._start[i] + self._window(i)
                if best is None or e < best:
                    best = e
        return best

    def due(self, now, force=False):
        """List of ``(code, count, src, subject bytes)`` summaries whose window has ended (all
        of them with ``force``, e.g. at shutdown); each is returned once."""
        out = []
        for i in range(self._used):
            n = self._sup[i]
            if n and (force or now - self._start[i] >= self._window(i) or now < self._start[i]):
                if self._mix and i == len(self._code) - 1:  # several codes' count: no subject
                    self._mix = 0
                    out.append((FLOOD_MIXED, n, self._src[i], b"\xff" * 6))
                else:
                    out.append((self._code[i], n, self._src[i],
                                bytes(self._subj[6 * i : 6 * i + 6])))
                self._sup[i] = 0
                self._grow[i] = 1
        return out


class EventLog:
    """Ring of ``capacity`` events. ``clock`` has ``time()`` (RTC seconds since 2000).
    ``sink``: optional callable(t, code, value, text, src, subject) with ``src`` the source
    and subject-kind byte and ``subject`` 6 bytes (see :func:`pack_subject`);
    firmware/meter/eventstore.py persists through it."""

    def __init__(self, clock, capacity=64, sink=None):
        self._clock = clock
        self._t = [0] * capacity
        self._c = bytearray(capacity)  # codes are 1..255 (one byte, as persisted)
        self._v = [0] * capacity
        self._s = bytearray(capacity)
        self._j = bytearray(6 * capacity)
        self._jv = memoryview(self._j)
        self._n = 0
        self.sink = sink
        self.counts = {}

    def log(self, code, value=0, text=None, src=SRC_METER, subject=None):
        """Record event ``code`` (1..255) with ``value`` (int); ``text``: free detail for
        consoles (never persisted); ``src``: SRC_*; ``subject``: what it concerned (an OBIS
        code or another address, str) or None."""
        i = self._n % len(self._c)
        t = self._clock.time()
        self._t[i] = t
        self._c[i] = code
        self._v[i] = value
        subj = self._jv[6 * i : 6 * i + 6]
        src = (src & 7) | pack_subject(subj, subject)
        self._s[i] = src
        self._n += 1
        self.counts[code] = self.counts.get(code, 0) + 1
        if self.sink is not None:
            self.sink(t, code, value, text, src, subj)

    def __len__(self):
        return min(self._n, len(self._c))

    def entries(self):
        """List of (t, code, value), oldest first."""
        cap = len(self._c)
        first = self._n - len(self)
        return [(self._t[j % cap], self._c[j % cap], self._v[j % cap])
                for j in range(first, self._n)]

    def records(self):
        """List of (t, code, value, source, subject text), oldest first."""
        cap = len(self._c)
        first = self._n - len(self)
        out = []
        for j in range(first, self._n):
            k = j % cap
            s = self._s[k]
            out.append((self._t[k], self._c[k], self._v[k], s & 7,
                        subject_text(s & _KIND_MASK, self._j[6 * k : 6 * k + 6])))
        return out

    def count(self, code):
        return self.counts.get(code, 0)

    @property
    def total(self):
        """Events logged since start (int; the uplink's cursor)."""
        return self._n

    def since(self, n):
        """List of (t, code, value) of the events numbered ``n`` .. ``total - 1`` still in
        the ring, oldest first."""
        cap = len(self._c)
        first = self._n - len(self)
        if n > first:
            first = n
        return [(self._t[j % cap], self._c[j % cap], self._v[j % cap])
                for j in range(first, self._n)]
