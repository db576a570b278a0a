# The virtual board for instruction counts: firmware/main.py with the wall-time sleepers put off.
"""Usage (MicroPython unix port, from the repository root; BENCHMARKS "Session 10: speed"):

    MICROPYPATH=.frozen:.frozen-lib:firmware:lib:. valgrind --tool=callgrind \\
        --callgrind-out-file=/dev/null .venv/bin/micropython -X heapsize=4m \\
        tools/callgrind_sim.py --speed max --duration D --json --quiet

Under valgrind (~50x slower) the tasks that sleep on the wall clock (the board's heap
sampler every 500 ms; the display, tamper and button polls every 50 ms) run ~50x as often
per simulated second as in a normal run, so the count of one tree varies by tens of millions
of instructions. Here those sleeps (``asyncio.sleep_ms(ms)`` with ms >= 20, and the sampler's
period) are put off to 10^8 ms; the sleeps of the virtual clock and its driver are untouched.
Per simulated second = (I(D2) - I(D1)) / (D2 - D1), e.g. D1 = 601, D2 = 1801 (start-up cancels
out); repeat counts still differ by ~5 k per simulated second (the virtual modem follows the
wall clock). Not for normal runs: the display and the ports are not polled.
"""

import asyncio

import boards.sim.board as _board

_board._HEAP_EVERY_MS = 100000000
_sleep_ms = asyncio.sleep_ms


def _put_off(ms):
    return _sleep_ms(100000000 if ms >= 20 else ms)


asyncio.sleep_ms = _put_off

import main  # noqa: E402,F401  (runs the virtual board with this command line)
