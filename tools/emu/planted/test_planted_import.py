# Planted failure for the harness self-test (tools/emu/selftest.py): a frozen test module
# whose import fails.
import no_such_module_anywhere  # noqa: F401


def test_planted_never_reached():
    assert True
