"""CPython stand-in for the `micropython` module so lib/ and firmware/ import under pytest.

heap_lock()/heap_unlock() are no-ops here: allocation-free paths are asserted only when the
same tests run on the MicroPython unix port (tools/mptest.py).
"""


def const(x):
    return x


def heap_lock():
    return 0


def heap_unlock():
    return 0


def native(f):
    return f


def viper(f):
    return f


def mem_info(*_):
    return None


def alloc_emergency_exception_buf(_n):
    return None
