"""The layout (docs/ARCHITECTURE.md): no import cycle anywhere in firmware/ or lib/; every
quantity on the LCD lists and in the readout list resolves through the OBIS catalogue; a new
quantity is one catalogue entry plus its source; every lib package has a manifest and the
manifests cover every device module. Both interpreters (no ``ast``: imports are read from
the source lines)."""

import os

_ROOT = __file__[: __file__.rfind("host_tests")] or "./"


def _walk(top):
    out = []
    for name in sorted(os.listdir(top)):
        p = top + "/" + name
        if name.endswith(".py"):
            out.append(p)
        elif "." not in name and name != "__pycache__":
            try:
                os.listdir(p)
            except OSError:
                continue
            out += _walk(p)
    return out


def modules(root=_ROOT, tops=("firmware", "lib")):
    """{module name: source path} of every module under ``tops`` (firmware/ and lib/ are
    both on the device's path, so a module's name is its path below them)."""
    mods = {}
    for top in tops:
        base = root + top
        for p in _walk(base):
            rel = p[len(base) + 1 : -3]
            if rel.endswith("manifest"):
                continue
            name = rel.replace("/", ".")
            if name.endswith(".__init__"):
                name = name[: -len(".__init__")]
            mods[name] = p
    return mods


def _imports(name, path, mods):
    """The project modules ``name`` imports, anywhere in its source (module level or in a
    function: a cycle either way)."""
    pkg = name if path.endswith("__init__.py") else name.rpartition(".")[0]
    out = set()
    with open(path) as f:
        lines = f.read().split("\n")
    for ln in lines:
        t = ln.strip()
        if t.startswith("import "):
            for part in t[7:].split("#")[0].split(","):
                m = part.strip().split(" ")[0]
                if m:
                    out.add(m)
        elif t.startswith("from ") and " import " in t:
            src, _, names = t[5:].partition(" import ")
            src = src.strip()
            if src.startswith("."):
                up = len(src) - len(src.lstrip("."))
                base = pkg
                for _ in range(up - 1):
                    base = base.rpartition(".")[0]
                src = base + ("." + src.lstrip(".") if src.lstrip(".") else "")
            out.add(src)
            for n in names.replace("(", " ").replace(")", " ").split("#")[0].split(","):
                n = n.strip().split(" ")[0]
                if n:
                    out.add(src + "." + n)
    deps = set()
    for m in out:
        while m:  # importing a.b imports a too
            if m in mods and m != name:
                deps.add(m)
            m = m.rpartition(".")[0]
    return deps


def import_cycles(root=_ROOT):
    """Every import cycle among the modules of firmware/ and lib/ (lists of module names)."""
    mods = modules(root)
    graph = {n: sorted(_imports(n, p, mods)) for n, p in mods.items()}
    cycles = []
    state = {}
    stack = []

    def visit(n):
        state[n] = 1
        stack.append(n)
        for d in graph[n]:
            if state.get(d) == 1:
                cycles.append(stack[stack.index(d):] + [d])
            elif d not in state:
                visit(d)
        stack.pop()
        state[n] = 2

    for n in sorted(graph):
        if n not in state:
            visit(n)
    return cycles


def test_no_import_cycle_in_firmware_or_lib():
    mods = modules()
    for m in ("app", "meter.catalogue", "tasks.display", "ports.iec", "energy", "ticks",
              "iec62056.session", "flashstore.journal", "billing.tariff", "modem.manager"):
        assert m in mods, m
    assert "meter" in _imports("tasks.display", mods["tasks.display"], mods)
    cycles = import_cycles()
    assert not cycles, "import cycles: %s" % ["->".join(c) for c in cycles]


def test_the_cycle_check_finds_a_cycle():
    # the check itself: a package whose modules import each other (as app.py, display.py and
    # protocols.py did before issue 8) is reported
    d = "/tmp/layout_cycle_%d" % os.getpid() if hasattr(os, "getpid") else "/tmp/layout_cycle"
    for sub in ("", "/firmware", "/lib"):
        try:
            os.mkdir(d + sub)
        except OSError:
            pass
    files = {"/firmware/a.py": "import b\n", "/firmware/b.py": "def f():\n    import c\n",
             "/lib/c.py": "from a import x\n", "/lib/d.py": "import c\n"}
    for p, text in files.items():
        with open(d + p, "w") as f:
            f.write(text)
    try:
        cycles = import_cycles(d + "/")
        assert cycles and set(cycles[0]) == {"a", "b", "c"}, cycles
    finally:
        for p in files:
            os.remove(d + p)
        for sub in ("/firmware", "/lib", ""):
            os.rmdir(d + sub)


def _meter():
    from app import Meter
    from boards.sim.board import Options, SimBoard
    from simkit import StepTrace

    o = Options()
    o.quiet = True
    o.no_flash = True
    return Meter(SimBoard(o, trace=StepTrace([(0, 2000000, 300000)])))


def test_every_listed_quantity_resolves_through_the_catalogue():
    import lcd
    from meter import defaults
    from meter.catalogue import A_READ, A_SHOW
    from tasks.display import DIAG_LIST, TEST_LIST

    m = _meter()
    cat = m.catalogue
    cfg = defaults.config()
    shown = list(cfg["display_list"]) + list(cfg["alt_list"]) + list(DIAG_LIST) + list(
        TEST_LIST)
    for code in shown:
        e = cat.entry(code)
        assert e is not None and e[4] & A_SHOW, code
        it = m.display.item(code)
        d = lcd.Display(auto=[it], hold_ms=1000, return_ms=0)
        d.tick(0)
        assert d.frame.ident or d.frame.all_on, code
    iec = m.iec_map()
    for code in defaults.READOUT:
        e = cat.entry(code)
        assert e is not None and e[4] & A_READ, code
    _instant(m.metering, {"V": 230.0, "I": 1.0, "IN": 1.0, "P": 230.0, "Q": 0.0, "S": 230.0,
                          "PF": 1.0, "f": 50.0, "angle": 0.0})
    assert [a for a, _v, _u in iec.readout()] == list(defaults.READOUT)
    # nothing else is shown or read: the display's and the map's codes are the catalogue's
    assert set(shown) <= set(cat.codes(A_SHOW))
    assert set(defaults.READOUT) <= set(cat.codes(A_READ))


def _instant(metering, si):
    # instantaneous values as if read: the thousandths (LCD) and the SI floats (protocols)
    metering.instant_milli = {k: int(v * 1000) for k, v in si.items()}
    metering.instant_value = si.get


def test_a_new_quantity_is_one_catalogue_entry_plus_its_source():
    # S (apparent power, already in Metering.instant_milli) as 9.7.0: one row in the catalogue's
    # table, nothing anywhere else, and it is readable over IEC 62056-21, in R1 and in the
    # readout list (it has no LCD annunciator for VA, so it is not A_SHOW)
    from meter import catalogue as C

    row = ("9.7.0", C.K_INSTANT, "VA", 1, C.A_READ, "S")
    saved = C._TABLE
    C._TABLE = saved + (row,)  # (the catalogue searches its table at each lookup)
    try:
        m = _meter()
        _instant(m.metering, {"V": 230.0, "I": 2.0, "IN": 2.0, "P": 440.0, "Q": 130.0,
                              "S": 458.8, "PF": 0.96, "f": 50.0, "angle": 16.0})
        iec = m.iec_map()
        assert iec.reader("9.7.0") == ("458.8", "VA")
        assert iec.writer("C.90.3", "1.8.0,9.7.0", True) is None
        assert [(a, v) for a, v, _u in iec.readout()][1] == ("9.7.0", "458.8")
        assert iec.writer("C.90.4", "1.8.0,9.7.0", True) is not None, "not for the LCD"
    finally:
        C._TABLE = saved


def _manifest(path, pkg_dir, packages, modules_, includes):
    class Options:
        def __init__(self):
            self.with_main = True
            self.board = "all"

        def defaults(self, **kw):
            for k, v in kw.items():
                setattr(self, k, v)

    base = path.rpartition("/")[0] or "."

    def package(name, files=None, base_path=".", opt=None):
        d = (base + "/" + base_path + "/" + name).replace("/./", "/")
        if files is None:
            packages.append(d)
        else:
            assert "manifest.py" not in files, "a manifest is no module"
            modules_.extend(d + "/" + f for f in files)

    def module(name, base_path=".", opt=None):
        modules_.append((base + "/" + base_path + "/" + name).replace("/./", "/"))

    def include(p, **kw):
        if not p.startswith("$("):  # (the port's own manifests)
            includes.append(_norm(base + "/" + p))

    libs = {}

    def add_library(name, p):
        libs[name] = _norm(base + "/" + p)

    def require(name, library=None, **kw):
        includes.append(libs[library] + "/" + name + "/manifest.py")

    env = {"metadata": lambda **kw: None, "package": package, "module": module,
           "include": include, "require": require, "add_library": add_library,
           "options": Options(), "freeze": lambda *a, **kw: None}
    with open(path) as f:
        text = f.read()
    here = os.getcwd()
    os.chdir(base)  # the manifest tool runs a manifest from its own folder
    try:
        exec(text, env)
    finally:
        os.chdir(here)


def _norm(p):
    parts = []
    for x in p.split("/"):
        if x == "..":
            parts.pop()
        elif x and x != ".":
            parts.append(x)
    return ("/" if p.startswith("/") else "") + "/".join(parts)


def test_manifests_cover_every_device_module():
    root = _ROOT.rstrip("/") or "."
    packages, mods, incs = [], [], []
    todo = [root + "/manifest.py"]  # the firmware image's (make firmware, tools/emu)
    seen = set()
    while todo:
        p = _norm(todo.pop())
        if p in seen:
            continue
        seen.add(p)
        _manifest(p, None, packages, mods, incs)
        todo += incs
        incs[:] = []
    for part in ("lib", "firmware", "boards"):
        assert _norm(root + "/" + part + "/manifest.py") in seen, part
    for d in os.listdir(root + "/lib"):
        if "." in d or d == "__pycache__":
            continue
        assert _norm(root + "/lib/" + d + "/manifest.py") in seen, "lib/%s: no manifest" % d
    covered = [_norm(p) for p in packages]
    files = [_norm(p) for p in mods]
    for path in modules(root + "/").values():
        path = _norm(path)
        assert path in files or any(path.startswith(c + "/") for c in covered), path
    for f in files:
        open(f).close()  # every listed module exists
    for c in covered:
        os.listdir(c)
