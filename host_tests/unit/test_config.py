# Configuration storage (lib/flashstore/config.py): A/B copies, CRC, versions, defaults with a
# reported status, and a cut at every flash op of a sequence of saves.
from boards.sim.norflash import NORFlash, PowerCut
from flashstore.config import (
    STATUS_BLANK,
    STATUS_CORRUPT,
    STATUS_MIGRATED,
    STATUS_NEWER,
    STATUS_OK,
    STATUS_OLD_DEFAULTS,
    STATUS_ONE_BAD,
    ConfigStore,
)
from flashstore.flash import Partition

DEFAULTS = {"meter_const": 1000, "cal": {"v_gain": 1.0, "i_gain": 1.0}, "display": ["1.8.0"]}


def _dev(sectors=2, ss=1024, page=256, seed=0):
    dev = NORFlash(sectors * ss, sector_size=ss, page_size=page, seed=seed, strict=True)
    return dev, Partition(dev, 0, dev.size)


def _cfg(i):
    return {"meter_const": 1000 + i, "cal": {"v_gain": 1.0 + i / 8, "i_gain": 0.5},
            "display": ["1.8.0", "2.8.0"][: 1 + i % 2], "n": i, "tou": list(range(i, i + 60))}


def _raises(exc, fn, *args):
    try:
        fn(*args)
    except exc:
        return True
    return False


def test_blank_gives_defaults_and_says_so():
    dev, part = _dev()
    lines = []
    cs = ConfigStore(part, DEFAULTS, version=1, log=lines.append)
    cfg, st = cs.load()
    assert st == STATUS_BLANK and cfg == DEFAULTS, "blank -> defaults: %r" % st
    assert cs.copies == 0 and "blank" in lines[0], "logged %r" % lines
    cfg["display"].append("x")
    assert cs.load()[0] == DEFAULTS, "defaults are handed out as copies"


def test_defaults_from_a_callable_are_made_at_each_use_not_kept():
    # (RAM: the settings' factory defaults are made when needed, issue 12)
    made = []

    def dflt():
        made.append(1)
        return {"meter_const": 1000, "cal": {"v_gain": 1.0, "i_gain": 1.0}, "display": ["1.8.0"]}

    dev, part = _dev()
    cs = ConfigStore(part, dflt)
    assert not made, "nothing made (nor kept) at construction"
    cfg, st = cs.load()
    assert st == STATUS_BLANK and cfg == DEFAULTS and len(made) == 1
    cfg["display"].append("x")
    assert cs.load()[0] == DEFAULTS and len(made) == 2, "a new dict at each use"
    cs.save({"meter_const": 500})
    cfg, st = ConfigStore(part, dflt).load()
    assert st == STATUS_OK and cfg["cal"] == DEFAULTS["cal"] and cfg["meter_const"] == 500


def test_save_load_roundtrip_alternates_copies():
    dev, part = _dev(sectors=4)  # two sectors per copy
    cs = ConfigStore(part, DEFAULTS)
    cs.load()
    for i in range(1, 4):
        assert cs.save(_cfg(i)) == i, "sequence number per save"
    assert dev.erase_counts == [2, 2, 1, 1], "A, B, A: %r" % dev.erase_counts
    cs2 = ConfigStore(part, DEFAULTS)
    cfg, st = cs2.load()
    want = dict(_cfg(3))
    assert st == STATUS_OK and cfg == want and cs2.copies == 2, "newest copy: %r %r" % (st, cfg)
    assert cs2.seq == 3 and cs2.stored_version == 1, "seq/version reported"


def test_missing_keys_are_filled_and_reported():
    dev, part = _dev()
    cs = ConfigStore(part, DEFAULTS)
    cs.save({"meter_const": 500})
    cfg, st = ConfigStore(part, DEFAULTS).load()
    assert st == STATUS_OK and cfg["meter_const"] == 500 and cfg["cal"] == DEFAULTS["cal"], (
        "merged over defaults")
    cs2 = ConfigStore(part, DEFAULTS)
    cs2.load()
    assert "cal" in cs2.detail and "display" in cs2.detail, "reported: %r" % cs2.detail


def test_cut_at_every_flash_op_keeps_old_or_new_config():
    def script(part, st):
        cs = ConfigStore(part, DEFAULTS)
        cs.load()
        for i in range(1, 5):
            st["flight"] = i
            cs.save(_cfg(i))
            st["ok"] = i
            st["flight"] = None

    dev, part = _dev()
    script(part, {})
    total = dev.ops
    assert total >= 16, "ops %d" % total
    for k in range(1, total + 1):
        dev, part = _dev(seed=k)
        st = {"ok": None, "flight": None}
        dev.cut_at_op(k)
        try:
            script(part, st)
            assert False, "cut %d did not happen" % k
        except PowerCut:
            pass
        dev.power_on()
        cs = ConfigStore(part, DEFAULTS)
        cfg, status = cs.load()
        if st["ok"] is None:
            assert cfg in (DEFAULTS, _cfg(1)), "cut %d: first save: %r" % (k, cfg)
            assert status in (STATUS_BLANK, STATUS_CORRUPT, STATUS_OK), "cut %d" % k
        else:
            assert cfg in (_cfg(st["ok"]), _cfg(st["flight"] or 0)), "cut %d: %r" % (k, cfg)
            assert status in (STATUS_OK, STATUS_ONE_BAD), "cut %d: status %r" % (k, status)
        cs.save(_cfg(9))
        assert ConfigStore(part, DEFAULTS).load() == (_cfg(9), STATUS_OK), "cut %d: save" % k


def test_a_program_that_did_not_take_never_costs_the_other_copy():
    # A worn or faulty NOR chip can leave a program undone without a word (no program-fail
    # status). The save was taken as done, and the next one erased the older copy by
    # sequence number: the only valid one. Two saves on such a chip lost the configuration
    # (the meter fell back to the factory password, ERR_SECURITY, until a visit). Now a save
    # reads its copy back: FlashError, and the next save goes over the same slot again.
    from flashstore.flash import FlashError

    class Worn(Partition):
        dead = False

        def program(self, addr, data):
            if not self.dead:
                Partition.program(self, addr, data)

    dev = NORFlash(2 * 1024, sector_size=1024, page_size=256, strict=True)
    part = Worn(dev, 0, dev.size)
    cs = ConfigStore(part, DEFAULTS)
    cs.load()
    assert cs.save(_cfg(1)) == 1 and cs.save(_cfg(2)) == 2
    part.dead = True
    for i in (3, 4, 5):
        assert _raises(FlashError, cs.save, _cfg(i)), i
    cfg, st = ConfigStore(part, DEFAULTS).load()
    assert st in (STATUS_OK, STATUS_ONE_BAD) and cfg == _cfg(2), (st, cfg.get("n"))
    part.dead = False  # (a program that takes again: both copies again)
    assert cs.save(_cfg(6)) == 3 and cs.save(_cfg(7)) == 4
    cfg, st = ConfigStore(part, DEFAULTS).load()
    assert st == STATUS_OK and cfg == _cfg(7), (st, cfg.get("n"))


def test_one_corrupt_copy_is_reported_and_the_other_used():
    dev, part = _dev()
    cs = ConfigStore(part, DEFAULTS)
    cs.save(_cfg(1))
    cs.save(_cfg(2))  # copy B
    dev.image[1024 + 20] ^= 0x01  # damage B's JSON
    lines = []
    cs2 = ConfigStore(part, DEFAULTS, log=lines.append)
    cfg, st = cs2.load()
    assert st == STATUS_ONE_BAD and cfg == _cfg(1), "fell back to A: %r" % st
    assert cs2.copies == 1 and "B corrupt" in lines[0], "reported: %r" % lines
    cs2.save(_cfg(3))  # repairs B (the bad copy), keeps A
    cs3 = ConfigStore(part, DEFAULTS)
    assert cs3.load() == (_cfg(3), STATUS_OK) and cs3.copies == 2, "repaired"


def test_both_copies_corrupt_gives_defaults():
    dev, part = _dev()
    cs = ConfigStore(part, DEFAULTS)
    cs.save(_cfg(1))
    cs.save(_cfg(2))
    dev.image[5] ^= 0x80  # A header (sequence number)
    dev.image[1024 + 40] ^= 0x02
    cfg, st = ConfigStore(part, DEFAULTS).load()
    assert st == STATUS_CORRUPT and cfg == DEFAULTS, "corrupt -> defaults: %r" % st


def test_versions_migrate_or_default():
    dev, part = _dev()
    ConfigStore(part, {"k": 1}, version=1).save({"kwh_const": 800})

    def mig(old, ver):
        assert ver == 1, "old version passed"
        return {"meter_const": old["kwh_const"]}

    cfg, st = ConfigStore(part, DEFAULTS, version=2, migrate=mig).load()
    assert st == STATUS_MIGRATED and cfg["meter_const"] == 800, "migrated: %r" % st
    assert cfg["display"] == DEFAULTS["display"], "new keys from defaults"
    cfg, st = ConfigStore(part, DEFAULTS, version=2).load()
    assert st == STATUS_OLD_DEFAULTS and cfg == DEFAULTS, "no migration -> defaults"

    def bad(old, ver):
        raise KeyError("nope")

    cfg, st = ConfigStore(part, DEFAULTS, version=2, migrate=bad).load()
    assert st == STATUS_OLD_DEFAULTS and cfg == DEFAULTS, "failed migration -> defaults"
    cfg, st = ConfigStore(part, DEFAULTS, version=0).load()
    assert st == STATUS_NEWER and cfg == DEFAULTS, "newer version -> defaults"


def test_validate_rejects_a_copy():
    dev, part = _dev()
    cs = ConfigStore(part, DEFAULTS)
    cs.save(_cfg(1))
    cs.save({"meter_const": -5})

    def ok(c):
        return c.get("meter_const", 1) > 0

    cfg, st = ConfigStore(part, DEFAULTS, validate=ok).load()
    assert st == STATUS_ONE_BAD and cfg == _cfg(1), "invalid newest copy skipped: %r" % st
    dev2, part2 = _dev()
    ConfigStore(part2, DEFAULTS).save({"meter_const": -1})
    cfg, st = ConfigStore(part2, DEFAULTS, validate=ok).load()
    assert st == STATUS_CORRUPT and cfg == DEFAULTS, "no acceptable copy -> defaults"


def test_limits():
    dev, part = _dev()
    cs = ConfigStore(part, DEFAULTS)
    assert cs.capacity == 1024 - 16, "capacity from the partition"
    assert _raises(ValueError, cs.save, {"x": "y" * 2000}), "too large"
    assert _raises(ValueError, cs.save, [1, 2]), "not a dict"
    odd = Partition(NORFlash(3 * 1024, 1024, 256), 0, 3 * 1024)
    assert _raises(ValueError, ConfigStore, odd, DEFAULTS), "odd sector count"


def test_first_save_cut_is_still_blank():
    # a cut during the very first save leaves one torn slot and one empty: nothing was ever
    # committed, so this is a fresh meter, not a lost configuration (no fallback alarm)
    from flashstore.config import SaveBudget  # noqa: F401  (same module)

    dev, part = _dev()
    cs = ConfigStore(part, DEFAULTS)
    cs.load()
    dev.cut_at_op(2)  # the erase is op 1, the JSON program op 2
    try:
        cs.save(_cfg(1))
    except PowerCut:
        pass
    dev.power_on()
    cfg, st = ConfigStore(part, DEFAULTS).load()
    assert st == STATUS_BLANK and cfg == DEFAULTS, st


def test_save_budget_bounds_writes():
    from flashstore.config import SaveBudget

    b = SaveBudget(burst=4, refill_s=3600)
    assert [b.take(0) for _ in range(5)] == [True] * 4 + [False], "a burst of 4"
    assert b.wait_s(10) == 3590
    assert not b.take(3599) and b.take(3600) and not b.take(3601), "then one an hour"
    n = sum(1 for t in range(3601, 3601 + 86400) if b.take(t))
    assert n == 24, ("24 writes a day under a sustained flood", n)
    assert b.take(10 ** 6) and b.take(10 ** 6) and b.take(10 ** 6) and b.take(10 ** 6)
    assert not b.take(10 ** 6), "the burst refills, never beyond 4"
    assert not b.take(5) and b.take(3605), "a clock that went back blocks one period, not 11 d"
    b2 = SaveBudget(1, 3600)
    assert b2.take(100) and not b2.take(50) and b2.take(3650), "accrual restarts at 50"


def test_a_large_record_is_parsed_from_the_one_copy_read():
    # a ~3.9 KB record (24 bus bindings) was read into a bytearray, copied to bytes and
    # decoded to a str: three contiguous blocks of its size at boot, which fragmentation on
    # a 96 KiB heap refused now and then (MemoryError). Now json.loads parses the very
    # bytearray the text was read into (no copy), on MicroPython as on CPython
    import json

    from flashstore import config as C

    dev, part = _dev(sectors=2, ss=8192)
    big = {"bindings": {"%08d" % (10000000 + i): "%08d" % (10000000 + i) for i in range(24)},
           "pad": "x" * 3000, "n": list(range(20))}
    cs = ConfigStore(part, {"n": []})
    cs.load()
    cs.save(big)
    seen = []

    class _Json:
        dumps = staticmethod(json.dumps)

        @staticmethod
        def loads(x):
            seen.append((type(x), len(x)))
            return json.loads(x)

    C.json = _Json
    try:
        cfg, st = ConfigStore(part, {"n": []}).load()
    finally:
        C.json = json
    n = len(json.dumps(big, separators=(",", ":")))
    assert st == STATUS_OK and cfg == big, st
    assert n > 3500 and (bytearray, n) in seen, (seen, n)
    assert all(t is not str and t is not bytes for t, k in seen if k == n), seen


def _raw(dev, slot, text, seq, ln=None):
    # a record written as save() would, CRC and all, with any bytes as its JSON
    import binascii
    import struct

    from flashstore import config as C

    base = slot * (dev.size // 2)
    h = bytearray(16)
    struct.pack_into(C._HFMT, h, 0, 0x43, 0x46, C.FORMAT, 0xFF, seq, 1,  # ("CF")
                     len(text) if ln is None else ln)
    struct.pack_into("<I", h, 12, binascii.crc32(text, binascii.crc32(bytes(h[0:12]))))
    for i in range(dev.size // 2):
        dev.image[base + i] = 0xFF
    dev.image[base:base + 16] = h
    dev.image[base + 16:base + 16 + len(text)] = text


def test_a_crc_valid_record_that_is_no_utf8_json_object_is_corrupt_on_both_runtimes():
    # the text is parsed from the bytearray it was read into: CPython's json.loads then
    # guesses the encoding of bytes (a UTF-8 BOM skipped, UTF-16/32 decoded) where
    # MicroPython's takes UTF-8 only, and MicroPython's stopped at a NUL byte; json.dumps
    # of a dict writes neither. Each is a corrupt copy: the other copy is used, on both
    # runtimes alike. A nesting past CPython's recursion limit raised RecursionError out of
    # load() (the meter did not boot)
    dev, part = _dev(sectors=2, ss=4096)
    cs = ConfigStore(part, DEFAULTS)
    cs.save(_cfg(1))  # A
    cs.save(_cfg(2))  # B: the copy that must be used once A (seq 9) is found corrupt
    deep = b'{"a":' + b"[" * 1000 + b"]" * 1000 + b"}"
    utf16 = bytes(b for c in b'{"a":1}' for b in (c, 0))  # (MicroPython's encode: UTF-8)
    for text in (b'{"a":"\xff"}', b'\xef\xbb\xbf{"a":1}', b'{"a":1}\x00', b'{"a":1}\x00x',
                 b'{"a":"x\x00y"}', utf16, b"[1,2]", b'"s"', b"1", b"null", b"", b"{",
                 b'{"a":1', b'{"a":1} '):
        _raw(dev, 0, text, 9)
        cfg, st = ConfigStore(part, DEFAULTS).load()
        assert st == STATUS_ONE_BAD and cfg == _cfg(2), (text[:20], st)
    # (MicroPython's parser has no recursion limit: there the deep record is the newest)
    _raw(dev, 0, deep, 9)
    cfg, st = ConfigStore(part, DEFAULTS).load()
    assert (st == STATUS_ONE_BAD and cfg == _cfg(2)) or (st == STATUS_OK and "a" in cfg), st


def test_a_record_filling_the_capacity_is_read_and_one_past_it_is_not():
    dev, part = _dev(sectors=2, ss=4096)
    cs = ConfigStore(part, DEFAULTS)
    cs.save(_cfg(1))
    cs.save(_cfg(2))
    cap = cs.capacity
    full = b'{"n":"' + b"y" * (cap - 8) + b'"}'
    assert len(full) == cap
    _raw(dev, 0, full, 9)
    cfg, st = ConfigStore(part, DEFAULTS).load()
    assert st == STATUS_OK and cfg["n"] == "y" * (cap - 8), st
    _raw(dev, 0, full, 9, ln=cap + 1)  # (the length field past the capacity)
    cfg, st = ConfigStore(part, DEFAULTS).load()
    assert st == STATUS_ONE_BAD and cfg == _cfg(2), st
