# The whole meter on a real board module with the fake port modules (test only).
"""Builds the firmware (firmware/app.Meter) on a ``Board()`` of boards/pico.py or
boards/stm32.py running on the unix port against the fake ``machine``/``rp2``/``pyb``/``stm``
modules, with the ADE7953 register model (boards/sim/ade7953_model.py) wired to the board's
own SPI, CS, IRQ and RESET pins, on the board's own clock (real time, asyncio): what a Pico
or a NUCLEO would run, minus the silicon.

:func:`run_meter` runs it for a while, stops it in order (commit) and returns what a
restart must find again; :func:`boot` builds it without running.
"""

import asyncio
import time

import machine

import app
import civil  # noqa: F401
import events
import flashstore.config  # noqa: F401
import flashstore.journal  # noqa: F401
import billing.p01  # noqa: F401  (ports.iec and meter.profile import it at a readout)
import iec62056.codec  # noqa: F401
import iec62056.session  # noqa: F401  (ports.iec imports it when a port's session is made)
import meter.eventstore  # noqa: F401
import meter.storage  # noqa: F401
import ports.iec  # noqa: F401
import ports.pump  # noqa: F401
import tasks.metering  # noqa: F401
import tasks.tamper  # noqa: F401
from boards.sim.ade7953_model import ADE7953Model
from meter import swid
from meter.status import ERR_CLOCK

# Everything the meter imports is imported above, and the metrology checksum computed, before
# the tests mount another root filesystem (relative paths would resolve on it afterwards).
swid.checksum_cached()


class ConstantLoad:
    """``p_w`` / ``q_var`` from t = 0 on (the model's trace interface)."""

    def __init__(self, p_w, q_var=0):
        self.p = int(p_w * 1000)
        self.q = int(q_var * 1000)

    def at(self, t):
        return self.p, self.q, None


def wire_ade(cs, irq, reset, p_w=9000, q_var=2000):
    """The ADE7953 model behind the fake SPI bus, selected by pin ``cs``, its IRQ output on
    pin ``irq`` and its RESET input on pin ``reset`` (pin ids as the board names them), on
    real time. Returns the model."""
    model = ADE7953Model(ConstantLoad(p_w, q_var), time.ticks_ms)
    machine.SPI.DEVICE = model
    machine.Pin.HOOKS[cs] = model.select
    machine.Pin.HOOKS[reset] = model.reset_pin
    machine.Pin.SOURCES[irq] = model.irq_pin
    return model


def boot(board):
    return app.Meter(board)


def run_meter(board, ms):
    """The meter on ``board`` for ``ms`` of real time, then the orderly stop (the shutdown
    commits the registers and writes a held-back configuration). Returns the Meter."""
    meter = boot(board)
    asyncio.run(meter.main(ms))
    asyncio.new_event_loop()
    return meter


def check_restart(make_board, ms=2600):
    """Run the meter on ``make_board()``, change a setting over the catalogue (W1 C.90.1), stop;
    build the board and the meter again: the registers and the setting are restored, the
    journal and the configuration record were found, nothing is flagged but the clock."""
    m = run_meter(make_board(), ms)
    regs = m.registers.snapshot()
    assert m.metering.ok and m.metering.steps >= 2, (m.metering.fault, m.metering.steps)
    assert regs["1.8.0"] > 0 and regs["5.8.0"] > 0, regs
    assert m.storage is not None and m.storage.commits >= 1, "committed at the stop"
    assert m.settings.store is not None, "a config partition"
    m.catalogue.write("C.90.1", 20, events.SRC_OPTICAL)
    m.settings.flush()
    assert m.supervisor.failed is None and not [
        e for e in m.log.entries() if e[1] == events.TASK_DIED], m.log.entries()
    m2 = boot(make_board())
    assert m2.storage_status == "ok", m2.storage_status
    assert m2.registers.snapshot() == regs, (m2.registers.snapshot(), regs)
    assert m2.settings["scroll_ms"] == 20000, "the W1 setting survived the restart"
    assert m2.settings.status == "ok", m2.settings.status
    assert m2.status.error_flags() & ~ERR_CLOCK == 1, hex(m2.status.error_flags())  # metrology:
    # not metering before the task starts
    return m, m2
