# On-target unit-test runner for the emulated MCU cores (frozen into the emu firmware).
"""Runs the frozen host_tests/unit modules the way tools/mptest.py does on the unix port
(every module-level ``test_*``, coroutines through ``asyncio.run``), printing one line per
event for the host driver (tools/emu/emu.py), which owns timeouts, restarts and the totals:

    EMU BOOT free=<bytes> heap=<bytes> data=<bytes> bss=<bytes> ramdisk=<bytes>
    EMU MOD <i> <module>
    EMU RUN <module>.<test>
    EMU PASS <module>.<test> cycles=<n> free=<bytes>
    EMU FAIL <module>.<test> <reason>      (traceback lines follow)
    EMU HOSTONLY <module>.<test> <reason>
    EMU XFAIL <module>.<test> <exception>  (planted failure seen, see EMU_EXPECT_FAIL)
    EMU KNOWN <module>.<test> <reason>     (emu_host_only.KNOWN_DEFECTS, failing as listed)
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


def _host_only(mod, name, heap, ramdisk):
    import emu_host_only

    key = mod.__name__ + "." + name
    r = emu_host_only.HOST_ONLY.get(key) or emu_host_only.HOST_ONLY.get(mod.__name__)
    if r is None:
        r = getattr(mod, "EMU_HOST_ONLY", {}).get(name)
    if isinstance(r, tuple):  # ("heap" or "ramdisk", smallest size in bytes it fits, reason)
        have = heap if r[0] == "heap" else ramdisk
        if have >= r[1]:
            return None
        r = "%s (%s %d KiB < %d KiB)" % (r[2], r[0], have // 1024, r[1] // 1024)
    return r


def _known(full):
    import emu_host_only

    return emu_host_only.KNOWN_DEFECTS.get(full)


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
    """Mount the RAM disk as / with the data files, and put the frozen modules first."""
    import emu_blockdev

    if emu_blockdev.mount_ram_root():
        _copy_files()
    # Frozen modules first (as MICROPYPATH=.frozen:... on the unix port): the data files'
    # folders on the RAM disk (e.g. /boards) must not shadow frozen packages.
    if ".frozen" in sys.path:
        sys.path.remove(".frozen")
        sys.path.insert(0, ".frozen")


def main(start_mod=0, start_test=0):
    import emu
    from emu_tests import TESTS

    data, bss, ramdisk, _top, heap = emu.mem()
    gc.collect()
    print("EMU BOOT free=%d heap=%d data=%d bss=%d ramdisk=%d" % (gc.mem_free(), heap, data,
                                                                  bss, ramdisk))
    setup()
    for i in range(start_mod, len(TESTS)):
        name = TESTS[i]
        print("EMU MOD %d %s" % (i, name))
        try:
            mod = __import__(name)
        except BaseException as e:  # noqa: B036 - a failing import fails the whole module
            print("EMU FAIL %s.(import) %s" % (name, type(e).__name__))
            _print_exc(e)
            sys.modules.pop(name, None)
            continue
        tests = [k for k in sorted(dir(mod)) if k.startswith("test_")]
        expect = getattr(mod, "EMU_EXPECT_FAIL", {})
        for j in range(len(tests)):
            if i == start_mod and j < start_test:
                continue
            t = tests[j]
            full = name + "." + t
            why = _host_only(mod, t, heap, ramdisk)
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
            known = _known(full)
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
    print("EMU END")
