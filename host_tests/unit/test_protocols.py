"""firmware/protocols.py: the meter's IEC 62056-21 data, lists and parameters (W1 paths)."""

from boards.sim.board import Options, SimBoard
from iec_session import ER_BAD_VALUE, ER_NOT_WRITABLE, ER_SEALED
from simkit import StepTrace


def _meter(board=None):
    import app
    from protocols import MeterData

    if board is None:
        o = Options()
        o.quiet = True
        board = SimBoard(o, trace=StepTrace([(0, 1000000, 0)]))
    m = app.Meter(board)
    return board, m, MeterData(m, "12345678")


def test_readout_list_is_configurable_and_saved():
    board, m, d = _meter()
    assert [a for a, _v, _u in d.readout()][:2] == ["C.1.0", "0.0.0"]
    assert d.writer("C.90.3", "1.8.0,C.1.0", True) is None
    assert [a for a, _v, _u in d.readout()] == ["1.8.0", "C.1.0"]
    assert d.writer("C.90.3", "1.8.0,9.9.9", True) == ER_BAD_VALUE, "unknown code refused"
    assert d.reader("C.90.3")[0] == "1.8.0,C.1.0"
    board2, m2, d2 = _meter(board)  # reboot on the same flash: the list survived
    assert [a for a, _v, _u in d2.readout()] == ["1.8.0", "C.1.0"], m2.config_status


def test_display_list_must_keep_the_billing_register():
    board, m, d = _meter()
    assert d.writer("C.90.4", "2.8.0,32.7.0", True) == ER_BAD_VALUE
    assert d.writer("C.90.4", "1.8.0,32.7.0", True) is None
    assert m.cfg["display_list"] == ["1.8.0", "32.7.0"]
    assert m.display.display.items(0) == 2


def test_password_change_persists():
    board, m, d = _meter()
    assert d.writer("C.90.2", "1234", True) == ER_BAD_VALUE
    assert d.writer("C.90.2", "87654321", True) is None
    board2, m2, d2 = _meter(board)
    assert d2.password == "87654321"


def test_metrological_write_needs_open_seal():
    board, m, d = _meter()
    assert d.writer("0.3.0", "2000", True) == ER_SEALED
    assert m.cfg["meter_constant"] == 1000
    assert d.writer("0.3.0", "2000", False) is None
    assert m.cfg["meter_constant"] == 2000
    assert d.writer("1.8.0", "0", False) == ER_NOT_WRITABLE, "billing registers never written"
    assert d.executor("C.91.9", "", True) == ER_SEALED, "no cold start under seal"


def test_kwh_text():
    from protocols import kwh_text

    assert kwh_text(1234567890) == "0001234.567", kwh_text(1234567890)
    assert kwh_text(-5000) == "-0000000.005"
