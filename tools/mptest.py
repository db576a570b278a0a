# Minimal test runner for the MicroPython unix port.
# Imports every host_tests/unit/test_*.py, calls each module-level test_* function (running
# returned coroutines with asyncio.run), prints failures and a closing `N passed, N failed` line,
# and exits non-zero on any failure. Same test files run under pytest on CPython.
# Usage: MICROPYPATH=.frozen:firmware:lib:. micropython tools/mptest.py host_tests/unit [name]
import sys
import os
import asyncio
import gc


def _modules(folder):
    names = [n[:-3] for n in os.listdir(folder) if n.startswith("test_") and n.endswith(".py")]
    names.sort()
    return names


# A test coroutine that waits on something that never wakes blocked the unix port's event
# loop for good (make unit-micropython hung): each one gets this long (MPTEST_TIMEOUT_S).
_TIMEOUT_S = int(os.getenv("MPTEST_TIMEOUT_S") or 600)


def _run_coro(r):
    done = []

    async def _until_done():
        await asyncio.wait_for(r, _TIMEOUT_S)
        done.append(1)

    asyncio.run(_until_done())
    asyncio.new_event_loop()
    if not done:  # asyncio.run returns when no task can wake again (ports without a poller)
        raise RuntimeError("the test coroutine never finished")


def main():
    folder = sys.argv[1] if len(sys.argv) > 1 else "host_tests/unit"
    only = sys.argv[2] if len(sys.argv) > 2 else None
    sys.path.insert(0, folder)
    passed = failed = 0
    for name in _modules(folder):
        if only and only not in name:
            continue
        try:
            mod = __import__(name)
        except Exception as e:  # an import error fails the whole module
            failed += 1
            print("FAIL", name, "(import)")
            sys.print_exception(e)
            continue
        tests = [k for k in sorted(dir(mod)) if k.startswith("test_")]
        for t in tests:
            fn = getattr(mod, t)
            gc.collect()  # a fresh heap for each test (the 4 MB cap fragments otherwise)
            try:
                r = fn()
                if r is not None and hasattr(r, "send"):
                    _run_coro(r)
                passed += 1
            except Exception as e:
                failed += 1
                print("FAIL", name + "." + t)
                sys.print_exception(e)
        # the module is dropped once its tests ran (as on the emulated cores, which boot
        # afresh per module): the next modules' tests do not run beside its globals
        mod = fn = None
        sys.modules.pop(name, None)
    print("%d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)


main()
