# Planted for the harness self-test (tools/emu/selftest.py): a test defined only where an
# import works (the QEMU port has no socket module), so the core never sees it. The host
# side must report it as not run, not count it as nothing.
try:
    import socket  # noqa: F401

    def test_planted_vanishes_without_sockets():
        assert True
except ImportError:
    pass
