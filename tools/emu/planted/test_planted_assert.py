# Planted failure for the harness self-test (tools/emu/selftest.py): a failing assert.
def test_planted_failing_assert():
    assert 1 + 1 == 3, "planted: this assert fails"


def test_planted_passes():
    assert True
