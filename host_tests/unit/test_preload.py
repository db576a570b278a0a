"""firmware/preload.py: the boot-time import order of the application (issue 12, the .mpy
deployment). ``preload.ORDER`` must be the modules that ``app`` (and the metering task that
``app.run`` always starts) import at module level, leaves first: each is imported alone, with
a collection after it, so a module's bytecode loaded from a .mpy file lands next to the code
already kept and the garbage of its load is gone before the next one (tools/emu/deploy_test.py
measures the largest free block after it). Both interpreters (the imports are read from the
source lines, as test_layout does)."""

from test_layout import modules

import preload

# what the boot imports: app at module level, and the metering task app.run always starts
ROOTS = ("app", "tasks.metering")


def _module_level_imports(name, path, mods):
    """The project modules ``name`` imports at module level (lines at column 0; a
    parenthesised name list may span lines), in source order; absolute imports only (the
    preload imports each module by name; a relative import would be resolved the same way)."""
    pkg = name if path.endswith("__init__.py") else name.rpartition(".")[0]
    with open(path) as f:
        lines = f.read().split("\n")
    found = []
    i = 0
    while i < len(lines):
        ln = lines[i].split("#")[0]
        i += 1
        if ln.startswith("from ") and " import " in ln:
            while "(" in ln and ")" not in ln and i < len(lines):
                ln += " " + lines[i].split("#")[0]
                i += 1
            src, _, names = ln[5:].partition(" import ")
            src = src.strip()
            if src.startswith("."):
                up = len(src) - len(src.lstrip("."))
                base = pkg
                for _ in range(up - 1):
                    base = base.rpartition(".")[0]
                src = base + ("." + src.lstrip(".") if src.lstrip(".") else "")
            found.append(src)
            for n in names.replace("(", " ").replace(")", " ").split(","):
                n = n.strip().split(" ")[0]
                if n and src + "." + n in mods:
                    found.append(src + "." + n)
        elif ln.startswith("import "):
            for part in ln[7:].split(","):
                m = part.strip().split(" ")[0]
                if m:
                    found.append(m)
    out = []
    for m in found:
        chain = []
        while m:  # importing a.b imports a first
            chain.insert(0, m)
            m = m.rpartition(".")[0]
        for c in chain:
            if c in mods and c != name and c not in out:
                out.append(c)
    return out


def boot_order(roots=ROOTS):
    """The post-order (leaves first, source order among siblings) of the module-level imports
    reachable from ``roots``: the tuple preload.ORDER must hold."""
    mods = modules()
    order = []
    seen = set()

    def visit(n):
        seen.add(n)
        for d in _module_level_imports(n, mods[n], mods):
            if d not in seen:
                visit(d)
        order.append(n)

    for r in roots:
        if r not in seen:
            visit(r)
    return tuple(order)


def test_preload_order_is_the_module_level_import_order():
    want = boot_order()
    assert want[-2:] == ("app", "tasks.metering"), want[-2:]
    assert "meter.metering" in want and "ade7953" in want
    assert want.index("meter.metering") < want.index("app")
    assert preload.ORDER == want, (
        "firmware/preload.py ORDER out of date with the imports; it should be:\n%r" % (want,))


def test_preload_order_check_sees_submodules_and_packages():
    mods = modules()
    deps = _module_level_imports("meter.billing", mods["meter.billing"], mods)
    # "from billing import tariff" style imports name the package first, then the submodule
    for d in deps:
        if "." in d and d.rpartition(".")[0] in mods:
            assert deps.index(d.rpartition(".")[0]) < deps.index(d), deps


def test_preload_load_imports_each_module_once_in_order():
    # load() imports what ORDER names, in order (already imported modules cost nothing)
    import sys

    seen = []

    class Probe:
        pass

    name = "_preload_probe_mod"
    sys.modules[name] = Probe()
    try:
        preload.load((name,), collect=lambda: seen.append("gc"))
    finally:
        del sys.modules[name]
    assert seen == ["gc"]
