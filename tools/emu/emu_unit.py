# On-target unit-test runner for the emulated MCU cores (frozen into the emu firmware).
"""Runs the frozen host_tests/unit modules the way tools/mptest.py does on the unix port
(every module-level ``test_*``, coroutines through ``asyncio.run``), printing one line per
event for the host driver (tools/emu/emu.py), which owns timeouts, restarts and the totals:

    EMU BOOT free=<bytes> heap=<bytes> data=<bytes> bss=<bytes> ramdisk=<bytes> flashmem=<bytes>
    EMU MOD <i> <module>
    EMU RUN <module>.<test>
    EMU PASS <module>.<test> cycles=<n> free=<bytes>
    EMU FAIL <module>.<test> <reason>      (traceback lines follow)
    EMU HOSTONLY <module>.<test> <reason>
    EMU XFAIL <module>.<test> <exception>  (planted failure seen, see EMU_EXPECT_FAIL)
    EMU KNOWN <module>.<test> <reason>     (emu_host_only.KNOWN_DEFECTS, failing as listed)
    EMU DONE <i>                           (module i finished, see main(one=True))
    EMU END

Tests that cannot run on these cores are listed in ``emu_host_only.HOST_ONLY`` (and a test
module may add its own ``EMU_HOST_ONLY`` dict): each is reported by name with its reason,
never silently dropped. ``EMU_EXPECT_FAIL`` in a test module names tests planted to fail on
a 32-bit core (test -> exception name): they must fail there with that exception, and a pass
is a failure (the harness would have stopped checking what it exists for).
"""

import gc
import sys
import time

import asyncio


def _print_exc(e):
    sys.print_exception(e)


def _host_only(mod, name, sizes, listed):
    key = mod.__name__ + "." + name
    r = listed.get(key) or listed.get(mod.__name__)
    if r is None:
        r = getattr(mod, "EMU_HOST_ONLY", {}).get(name)
    if isinstance(r, tuple):  # ("heap" | "ramdisk" | "flashmem", smallest size it fits, reason)
        have = sizes[r[0]]
        if have >= r[1]:
            return None
        r = "%s (%s %d KiB < %d KiB)" % (r[2], r[0], have // 1024, r[1] // 1024)
    return r


def _listed(name):
    """The entries of emu_host_only (HOST_ONLY, KNOWN_DEFECTS) for test module ``name``, as
    two small dicts; the module itself (a 2 KB dict of every entry) is dropped again, so a
    test module's tests never share the heap with it."""
    import emu_host_only as H

    own = {}
    known = {}
    for src, dst in ((H.HOST_ONLY, own), (H.KNOWN_DEFECTS, known)):
        for k, v in src.items():
            if k == name or k.startswith(name + "."):
                dst[k] = v
    del H
    sys.modules.pop("emu_host_only", None)
    return own, known


def _unlock_heap():
    """Unlock a heap a test left locked; True if it had to."""
    import micropython

    left = False
    while micropython.heap_locked():
        micropython.heap_unlock()
        left = True
    return left


def _copy_files():
    """Write the data files frozen in emu_files onto the RAM disk (same relative paths)."""
    import os

    from emu_files import FILES

    for rel, data in FILES.items():
        d = ""
        for part in rel.split("/")[:-1]:
            d = d + "/" + part
            try:
                os.mkdir(d)
            except OSError:
                pass
        with open("/" + rel, "wb") as f:
            f.write(data)
    del FILES
    sys.modules.pop("emu_files", None)  # its dict is not needed again


def _run_one(fn):
    r = fn()
    if r is not None and hasattr(r, "send"):
        done = []

        async def _until_done():
            await r
            done.append(1)

        # MicroPython's asyncio.run returns when no task can ever wake again: a test coroutine
        # blocked for good would otherwise end as a pass.
        asyncio.run(_until_done())
        asyncio.new_event_loop()
        if not done:
            raise RuntimeError("the test coroutine never finished: it waits on nothing that "
                               "can wake it")


def setup():
    """Mount the RAM disk as / with the data files, put the frozen modules first, and give the
    virtual board's NOR-flash images memory outside the GC heap where the build has some."""
    import emu
    import emu_blockdev

    if emu_blockdev.mount_ram_root():
        _copy_files()
    # Frozen modules first (as MICROPYPATH=.frozen:... on the unix port): the data files'
    # folders on the RAM disk (e.g. /boards) must not shadow frozen packages.
    if ".frozen" in sys.path:
        sys.path.remove(".frozen")
        sys.path.insert(0, ".frozen")
    if emu.flashmem_size:
        from boards.sim import norflash

        norflash.set_image_allocator(emu.flashmem)


def main(start_mod=0, start_test=0, one=False):
    """Run the frozen test modules from ``start_mod`` (its tests from ``start_test``); with
    ``one``, that module only, then ``EMU DONE <i>``: the host boots the core afresh for the
    next, so every module starts in a fresh heap as an application does at a device's boot
    (modules a test imports stay loaded, wherever the heap had room: after a few dozen test
    modules no 64 KiB block is left in a 192 KiB heap)."""
    import emu
    from emu_tests import TESTS

    data, bss, ramdisk, _top, heap = emu.mem()
    gc.collect()
    print("EMU BOOT free=%d heap=%d data=%d bss=%d ramdisk=%d flashmem=%d" % (
        gc.mem_free(), heap, data, bss, ramdisk, emu.flashmem_size))
    sizes = {"heap": heap, "ramdisk": ramdisk, "flashmem": emu.flashmem_size}
    setup()
    for i in range(start_mod, len(TESTS)):
        name = TESTS[i]
        print("EMU MOD %d %s" % (i, name))
        listed, known_defects = _listed(name)
        # the garbage of the set-up (the RAM disk's files written) and of the lists above is
        # collected before the test module is imported: else its modules land above it and
        # split the heap's free space in two (no 64 KiB block left in a 96 KiB heap)
        gc.collect()
        try:
            mod = __import__(name)
        except BaseException as e:  # noqa: B036 - a failing import fails the whole module
            print("EMU FAIL %s.(import) %s" % (name, type(e).__name__))
            _print_exc(e)
            sys.modules.pop(name, None)
            if one:
                print("EMU DONE %d" % i)
                return
            continue
        tests = [k for k in sorted(dir(mod)) if k.startswith("test_")]
        expect = getattr(mod, "EMU_EXPECT_FAIL", {})
        for j in range(len(tests)):
            if i == start_mod and j < start_test:
                continue
            t = tests[j]
            full = name + "." + t
            why = _host_only(mod, t, sizes, listed)
            if why:
                print("EMU HOSTONLY %s %s" % (full, why))
                continue
            print("EMU RUN %d %s" % (j, full))
            gc.collect()
            c0 = time.ticks_cpu()
            try:
                _run_one(getattr(mod, t))
                err = None
            except Exception as e:
                err = e
            cyc = time.ticks_diff(time.ticks_cpu(), c0)
            if _unlock_heap() and err is None:
                err = RuntimeError("the test left the heap locked")
            gc.collect()
            want = expect.get(t)
            known = known_defects.get(full)
            if known is not None:
                if err is not None and type(err).__name__ == known[0]:
                    print("EMU KNOWN %s %s: %s" % (full, known[0], known[1]))
                elif err is None:
                    print("EMU FAIL %s listed as a known defect but passes: remove it from "
                          "emu_host_only.KNOWN_DEFECTS" % full)
                else:
                    print("EMU FAIL %s %s (known defect expects %s)" %
                          (full, type(err).__name__, known[0]))
                    _print_exc(err)
            elif want is not None:
                if err is not None and type(err).__name__ == want:
                    print("EMU XFAIL %s %s" % (full, want))
                elif err is None:
                    print("EMU FAIL %s planted failure did not fail (want %s)" % (full, want))
                else:
                    print("EMU FAIL %s planted failure raised %s, want %s" %
                          (full, type(err).__name__, want))
                    _print_exc(err)
            elif err is None:
                print("EMU PASS %s cycles=%d free=%d" % (full, cyc, gc.mem_free()))
            else:
                print("EMU FAIL %s %s" % (full, type(err).__name__))
                _print_exc(err)
        del mod
        sys.modules.pop(name, None)
        gc.collect()
        if one:
            print("EMU DONE %d" % i)
            return
    print("EMU END")
