"""firmware/meter/swid.py: the metrology checksum (0.2.8) covers the code that runs. A module
that is loaded but has no file (frozen into the image: its ``__file__`` is a path inside the
image) must not be matched to another file along ``sys.path``: a Pico flashed with the frozen
UF2 after ``make deploy`` keeps the deployed ``/lib/*.mpy`` on its filesystem (the frozen
modules come first on sys.path and run), and 0.2.8 showed the CRC of those stale files
instead of the image's build-time checksum. Both interpreters."""

import os
import sys

from meter import swid


class _Frozen:
    """A loaded module without a file, as a frozen module looks (MicroPython 1.25: __file__
    'name/__init__.py', relative to the image, not on any filesystem)."""

    def __init__(self, name):
        self.__file__ = name + "/__init__.py"


def test_a_loaded_module_without_a_file_is_not_hashed_from_a_stray_copy():
    d = "/tmp/swid_%s" % "".join("%02x" % b for b in os.urandom(6))
    name = "swid_stray_mod"
    os.mkdir(d)
    path = d + "/" + name + ".py"
    with open(path, "w") as f:
        f.write("X = 1\n")
    sys.path.append(d)
    try:
        assert swid.module_file(name) == path, "not loaded: the file an import would find"
        sys.modules[name] = _Frozen(name)
        assert swid.module_file(name) is None, swid.module_file(name)
        assert swid.checksum((name,)) is None, "no file: the build-time checksum instead"
    finally:
        sys.modules.pop(name, None)
        sys.path.remove(d)
        os.remove(path)
        os.rmdir(d)
