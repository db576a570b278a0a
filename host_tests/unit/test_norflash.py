# NOR-flash model (boards/sim/norflash.py) and the flash access layer (lib/flashstore/flash.py).
import os
import random

from boards.sim.norflash import OP_ERASE, OP_PROGRAM, NORFlash, PowerCut
from flashstore.flash import BlockDeviceFlash, FlashError, Partition


def _tmp_path(tag):
    return "/tmp/norflash_%s_%d.bin" % (tag, random.getrandbits(30))


def _rm(path):
    for p in (path, path + ".wear"):
        try:
            os.remove(p)
        except OSError:
            pass


def _raises(exc, fn, *args):
    try:
        fn(*args)
    except exc:
        return True
    return False


def test_blank_erase_and_erase_counts():
    f = NORFlash(4 * 4096)
    buf = bytearray(16)
    f.read(100, buf)
    assert buf == b"\xff" * 16, "new image is blank"
    f.program(0, b"\x00" * 16)
    f.erase(0)
    f.erase(0)
    f.erase(4096 * 2)
    f.read(0, buf)
    assert buf == b"\xff" * 16, "erase sets 0xFF"
    assert f.erase_counts == [2, 0, 1, 0], "erase counters per sector: %r" % f.erase_counts
    assert (f.ops, f.erases, f.programs) == (4, 3, 1), "ops counters %r" % (
        (f.ops, f.erases, f.programs),)


def test_program_only_clears_bits():
    f = NORFlash(4096, sector_size=1024, page_size=256)
    f.program(10, b"\x0f\xf0\xaa")
    f.program(10, b"\xf3\x3f\xff")  # 1 bits cannot come back
    buf = bytearray(3)
    f.read(10, buf)
    assert buf == bytes([0x03, 0x30, 0xAA]), "AND semantics, got %r" % (bytes(buf),)
    assert f.bytes_programmed == 6, "bytes counted"


def test_page_boundary_alignment_and_range_errors():
    f = NORFlash(4096, sector_size=1024, page_size=256)
    assert _raises(ValueError, f.program, 250, b"\x00" * 10), "program across a page"
    assert _raises(ValueError, f.erase, 100), "unaligned erase"
    assert _raises(ValueError, f.program, 4090, b"\x00" * 10), "program past the end"
    assert _raises(ValueError, f.read, 4090, bytearray(10)), "read past the end"
    assert _raises(ValueError, NORFlash, 1000, 512, 256), "size not a multiple of sectors"
    f.program(246, b"\x00" * 10)  # ends exactly at the page end: fine
    assert f.ops == 1, "only the valid program counted as an op"


def test_strict_mode_rejects_setting_bits():
    f = NORFlash(4096, sector_size=1024, page_size=256, strict=True)
    f.program(0, b"\x0f")
    f.program(0, b"\x0f")  # same value again is fine
    assert _raises(ValueError, f.program, 0, b"\x1f"), "strict: 0 -> 1 needs an erase"


def _cut_program(seed, old):
    f = NORFlash(1024, sector_size=1024, page_size=256, seed=seed)
    f.program(0, old)
    f.cut_at_op(1)
    data = bytes((i * 37 + 11) & 0xFF for i in range(64))
    cut = False
    try:
        f.program(0, data)
    except PowerCut:
        cut = True
    assert cut, "armed cut raises PowerCut"
    assert f.dead, "flash is dead after the cut"
    f.power_on()
    got = bytearray(64)
    f.read(0, got)
    return data, got


def test_cut_program_applies_a_subset_of_bit_changes():
    old = bytes((i * 91 + 200) & 0xFF for i in range(64))
    kinds = set()
    for seed in range(40):
        data, got = _cut_program(seed, old)
        for i in range(64):
            assert got[i] & ~old[i] & 0xFF == 0, "a cut program never sets bits"
            cleared = old[i] & ~got[i] & 0xFF
            assert cleared & data[i] == 0, "only bits the program clears may be cleared"
        full = bytes(old[i] & data[i] for i in range(64))
        kinds.add("none" if got == old else ("all" if got == full else "part"))
    assert "part" in kinds and "none" in kinds, "cut patterns vary by seed: %r" % (kinds,)


def test_cut_erase_applies_a_subset_and_ops_fail_until_power_on():
    hits = 0
    for seed in range(10):
        f = NORFlash(2048, sector_size=1024, page_size=256, seed=seed)
        for a in range(0, 1024, 256):
            f.program(a, b"\x00" * 256)
        f.cut_at_op(2)
        f.program(1024, b"\x00")  # op 1 completes
        try:
            f.erase(0)
            assert False, "op 2 must be cut"
        except PowerCut:
            pass
        assert _raises(PowerCut, f.program, 1500, b"\x00"), "program after a cut"
        assert _raises(PowerCut, f.erase, 1024), "erase after a cut"
        assert _raises(PowerCut, f.read, 0, bytearray(1)), "read after a cut"
        f.power_on()
        got = bytearray(1024)
        f.read(0, got)
        if got != b"\xff" * 1024:
            hits += 1
        one = bytearray(1)
        f.read(1024, one)
        assert one[0] == 0, "the op before the cut was applied"
        assert f.erase_counts[0] == 1, "a cut erase still counts as an erase"
        f.erase(0)
        f.read(0, got)
        assert got == b"\xff" * 1024, "works again after power_on()"
    assert hits >= 5, "most cut erases leave the sector partly erased (%d/10)" % hits


def test_fork_at_op_equals_real_cut():
    def script(f):
        for i in range(12):
            f.program((i * 32) % 1024 + 1024 * (i % 2), bytes([i] * 24))
            if i % 5 == 4:
                f.erase(1024 * (i % 2))

    forks = {}

    def on_op(fl, kind, addr, data):
        k = fl.ops + 1
        c = fl.copy()
        c.cut_at_op(1)
        try:
            if kind == OP_PROGRAM:
                c.program(addr, data)
            else:
                assert kind == OP_ERASE, "kind"
                c.erase(addr)
        except PowerCut:
            pass
        forks[k] = bytes(c.image)

    ref = NORFlash(2048, sector_size=1024, page_size=256, seed=7)
    ref.on_op = on_op
    script(ref)
    total = ref.ops
    assert total == 14, "12 programs + 2 erases, got %d" % total
    for k in range(1, total + 1):
        f = NORFlash(2048, sector_size=1024, page_size=256, seed=7)
        f.cut_at_op(k)
        try:
            script(f)
        except PowerCut:
            pass
        assert bytes(f.image) == forks[k], "fork at op %d tears like the real cut" % k


def test_file_backed_image_and_wear_persist():
    path = _tmp_path("persist")
    try:
        f = NORFlash(8192, sector_size=4096, page_size=256, path=path)
        f.program(5, b"\x12\x34")
        f.erase(4096)
        f.erase(4096)
        f.program(4096, b"\x00")
        f.close()  # written through already; close only releases the handles
        g = NORFlash(8192, sector_size=4096, page_size=256, path=path)
        buf = bytearray(2)
        g.read(5, buf)
        assert buf == b"\x12\x34", "image reloaded from file"
        g.read(4096, buf)
        assert buf == b"\x00\xff", "second sector reloaded"
        assert g.erase_counts == [0, 2], "erase counts reloaded: %r" % g.erase_counts
        g.close()
        assert _raises(ValueError, NORFlash, 4096, 4096, 256, path), "size mismatch rejected"
    finally:
        _rm(path)


def test_file_backed_keeps_a_torn_op():
    path = _tmp_path("torn")
    try:
        f = NORFlash(4096, path=path, seed=3)
        f.program(0, b"\x00" * 200)
        f.cut_at_op(1)
        try:
            f.erase(0)
        except PowerCut:
            pass
        img = bytes(f.image)
        f.close()
        g = NORFlash(4096, path=path)
        assert bytes(g.image) == img, "the torn state is what the file holds"
        g.close()
    finally:
        _rm(path)


def test_block_device_protocol():
    f = NORFlash(4 * 1024, sector_size=1024, page_size=256)
    assert f.ioctl(4, 0) == 4 and f.ioctl(5, 0) == 1024, "block count/size"
    f.writeblocks(1, bytes(range(200)) * 3, 100)  # 600 bytes across pages, no erase
    buf = bytearray(600)
    f.readblocks(1, buf, 100)
    assert buf == bytes(range(200)) * 3, "extended write/read with offset"
    assert f.erases == 0 and f.programs == 3, "split at pages 1280/1536: %d" % f.programs
    f.writeblocks(1, b"\x55" * 1024)  # simple interface: erase first
    f.readblocks(1, buf)
    assert buf == b"\x55" * 600, "simple writeblocks erased then programmed"
    assert f.ioctl(6, 1) == 0, "erase ioctl"
    f.readblocks(1, buf)
    assert buf == b"\xff" * 600, "ioctl(6) erased the block"


def test_littlefs_mounts_on_the_model():
    try:
        import vfs
    except ImportError:
        return  # CPython has no littlefs; the MicroPython run covers this
    f = NORFlash(16 * 4096, sector_size=4096, page_size=256)
    vfs.VfsLfs2.mkfs(f, progsize=256)
    fs = vfs.VfsLfs2(f, progsize=256)
    vfs.mount(fs, "/nortest")
    try:
        with open("/nortest/x.txt", "w") as fh:
            fh.write("meter")
        with open("/nortest/x.txt") as fh:
            assert fh.read() == "meter", "littlefs round trip"
    finally:
        vfs.umount("/nortest")
    assert f.erases > 0 and f.programs > 0, "littlefs used erase and program"


def test_partition_window():
    f = NORFlash(8 * 1024, sector_size=1024, page_size=256)
    p = Partition(f, 2048, 4096)
    assert (p.size, p.sector_size, p.page_size, p.sectors) == (4096, 1024, 256, 4), "geometry"
    p.program(10, b"\x00\x01")
    buf = bytearray(2)
    f.read(2058, buf)
    assert buf == b"\x00\x01", "partition offsets addresses"
    p.erase(0)
    assert f.erase_counts[2] == 1, "erase mapped to device sector 2"
    assert _raises(ValueError, p.program, 4095, b"\x00\x00"), "past the window"
    assert _raises(ValueError, p.erase, 4096), "erase past the window"
    assert _raises(ValueError, Partition, f, 100, 1024), "unaligned offset"
    assert _raises(ValueError, Partition, f, 4096, 8192), "window past the device"


def test_block_device_flash_pads_whole_pages():
    dev = NORFlash(8 * 1024, sector_size=1024, page_size=256)
    bf = BlockDeviceFlash(dev, page_size=256)
    assert (bf.size, bf.sector_size) == (8192, 1024), "geometry from ioctl"
    bf.program(1300, b"\x01\x02\x03")
    assert dev.programs == 1 and dev.bytes_programmed == 256, "one whole-page program"
    buf = bytearray(6)
    bf.read(1299, buf)
    assert buf == b"\xff\x01\x02\x03\xff\xff", "data placed, padding left 0xFF"
    big = bytearray(400)
    bf.read(1000, big)  # crosses the block boundary at 1024
    assert big[299] == 0xFF and big[301] == 0x02, "read across blocks"
    assert _raises(ValueError, bf.program, 250, b"\x00" * 10), "crossing a page"
    bf.erase(1024)
    bf.read(1299, buf)
    assert buf == b"\xff" * 6, "erase through ioctl 6"


class _NoEraseDev(NORFlash):
    def ioctl(self, op, arg):
        if op == 6:
            return 0  # like stm32 internal-flash pyb.Flash: erase silently does nothing
        return NORFlash.ioctl(self, op, arg)


class _SimpleOnlyDev(NORFlash):
    def ioctl(self, op, arg):
        if op == 1 and arg == 1:
            return -1
        return NORFlash.ioctl(self, op, arg)


def test_block_device_flash_catches_noop_erase_and_simple_devices():
    dev = _NoEraseDev(4096, sector_size=1024, page_size=256)
    bf = BlockDeviceFlash(dev)
    bf.program(0, b"\x00")
    assert _raises(FlashError, bf.erase, 0), "erase that leaves data is detected"
    assert _raises(ValueError, BlockDeviceFlash, _SimpleOnlyDev(4096, 1024, 256)), (
        "a device without the extended interface is refused")
