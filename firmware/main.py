# Entry point: pick the board for this port and run the meter.
"""main.py: on the unix port this is the virtual board (``make sim``); on an RP2040 the
Raspberry Pi Pico board; on STM32 the NUCLEO board."""

import sys


def _board():
    p = sys.platform
    if p == "rp2":
        from boards.pico import Board

        return Board()
    if p in ("pyboard", "stm32"):
        from boards.stm32 import Board

        return Board()
    from boards.sim.board import SimBoard, UsageError

    try:
        return SimBoard.from_argv(sys.argv[1:])
    except UsageError as e:
        sys.stderr.write(str(e) + "\n")
        sys.exit(2)
    except (ValueError, OSError) as e:  # LoadError names file and line
        sys.stderr.write("sim: cannot start: %s\n" % e)
        sys.exit(2)


def main():
    board = _board()
    import app

    app.run(board)


main()
