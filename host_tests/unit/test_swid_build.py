"""firmware/meter/swid.py on a frozen image: the metrology checksum computed at build time
(module ``swid_build``, written by tools/emu/emu.py and ``make firmware``)."""

import sys

from meter import swid


class _FakeBuild:
    CHECKSUM = 0x8BADF00D


def test_without_module_files_the_build_checksum_is_used():
    saved_file = swid.module_file
    saved_mod = sys.modules.get("swid_build")
    swid.module_file = lambda name: None  # as on a frozen image: no module has a file
    sys.modules["swid_build"] = _FakeBuild
    del swid._cache[:]
    try:
        assert swid.checksum() is None, "no files, no run-time checksum"
        assert swid.build_checksum() == 0x8BADF00D
        assert swid.checksum_cached() == 0x8BADF00D, "the image's build checksum is shown"
        assert swid.checksum_text() == "8BADF00D"
    finally:
        swid.module_file = saved_file
        if saved_mod is None:
            del sys.modules["swid_build"]
        else:
            sys.modules["swid_build"] = saved_mod
        del swid._cache[:]


def test_files_win_over_a_build_checksum():
    saved_mod = sys.modules.get("swid_build")
    sys.modules["swid_build"] = _FakeBuild
    del swid._cache[:]
    try:
        c = swid.checksum()
        assert swid.checksum_cached() == (0x8BADF00D if c is None else c)
    finally:
        if saved_mod is None:
            del sys.modules["swid_build"]
        else:
            sys.modules["swid_build"] = saved_mod
        del swid._cache[:]


def test_a_frozen_image_carries_its_build_checksum():
    if swid.checksum() is not None:
        return  # modules run from files (host, unix port): test_display checks that value
    import swid_build  # frozen images (the emulated cores): generated at build time

    assert swid_build.CHECKSUM is not None, "the build wrote the checksum"
    del swid._cache[:]
    assert swid.checksum_cached() == swid_build.CHECKSUM
    assert swid.checksum_text() == "%08X" % swid_build.CHECKSUM
