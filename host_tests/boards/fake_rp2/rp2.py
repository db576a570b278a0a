# Test-only stand-in for the rp2 module: the C part comes from _rp2 (fake), and asm_pio is a
# small recorder of the PIO assembler DSL (written for these tests: it checks that labels
# resolve and records each instruction with its side-set and delay; it does not encode).
from _rp2 import PIO, Flash, StateMachine  # noqa: F401

_OPS = ("pull", "push", "out", "in_", "set", "jmp", "wait", "mov", "irq", "nop")
_OPERANDS = ("x", "y", "pins", "pin", "isr", "osr", "null", "block", "noblock", "x_dec",
             "y_dec", "not_x", "not_y", "pindirs", "pc", "exec", "status", "clear", "invert")


class _Instr:
    def __init__(self, prog, name, args):
        self.name = name
        self.args = args
        self.side_v = None
        self.delay_v = 0
        prog.append(self)

    def side(self, v):
        self.side_v = v
        return self

    def __getitem__(self, delay):
        assert 0 <= delay <= 31, "PIO delay out of range"
        self.delay_v = delay
        return self


class Program:
    def __init__(self, kw):
        self.kw = kw
        self.labels = {}
        self.ins = []

    def append(self, i):
        self.ins.append(i)

    def __len__(self):
        return len(self.ins)

    def __iter__(self):
        return iter(self.ins)


def _emitter(prog, op):
    def emit(*a):
        return _Instr(prog, op, a)

    return emit


def asm_pio(**kw):
    def assemble(fn):
        prog = Program(kw)
        names = {op: _emitter(prog, op) for op in _OPS}
        names.update({n: n for n in _OPERANDS})
        names["rel"] = lambda i: ("rel", i)
        names["label"] = lambda name: prog.labels.__setitem__(name, len(prog))
        names["wrap_target"] = lambda: prog.labels.__setitem__("__wrap_target", len(prog))
        names["wrap"] = lambda: prog.labels.__setitem__("__wrap", len(prog))
        g = fn.__globals__
        saved = {k: g[k] for k in names if k in g}
        g.update(names)
        try:
            fn()
        finally:
            for k in names:
                del g[k]
            g.update(saved)
        for ins in prog:
            if ins.name == "jmp":
                target = ins.args[-1]
                assert target in prog.labels, "jmp to unknown label %r" % (target,)
        assert 0 < len(prog) <= 32, "PIO program of %d instructions" % len(prog)
        return prog

    return assemble
