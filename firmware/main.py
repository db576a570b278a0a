# Entry point: pick the board for this port and run the meter.
"""main.py: on the unix port this is the virtual board (``make sim``); on an RP2040 the
Raspberry Pi Pico board; on STM32 the NUCLEO board.

Virtual board: ``-h``/``--help`` prints the options and exits 0; a bad command line, a file,
tty or port that cannot be opened, or a malformed load trace prints one line naming it
(``sim: ...``) and exits 2.
"""

import sys


def _board():
    p = sys.platform
    if p == "rp2":
        from boards.pico import Board

        return Board()
    if p in ("pyboard", "stm32"):
        from boards.stm32 import Board

        return Board()
    from boards.sim.board import HelpRequested, SimBoard, UsageError

    try:
        return SimBoard.from_argv(sys.argv[1:])
    except HelpRequested as e:
        sys.stdout.write(str(e))
        sys.exit(0)
    except UsageError as e:
        sys.stderr.write("sim: %s\n" % e)
        sys.exit(2)
    except (ValueError, OSError) as e:  # LoadError names file and line
        sys.stderr.write("sim: cannot start: %s\n" % (e or type(e).__name__))
        sys.exit(2)


def _preload():
    """A device: the application's code first, leaves first, with a collection after each
    module (firmware/preload.py: a heap holding .mpy bytecode stays in one piece); the list
    is dropped after."""
    import preload

    preload.load()
    del sys.modules["preload"]


def main():
    if sys.platform in ("rp2", "pyboard", "stm32"):
        _preload()
    board = _board()
    import app

    app.run(board)


main()
