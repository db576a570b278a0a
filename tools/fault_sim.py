# MicroPython entry for tools/fault_campaign.py: the virtual board, as firmware/main.py runs
# it, with any fault the ADE7953 model knows (boards/sim/ade7953_model.FAULTS, more than
# `make sim --fault` accepts), injected at --fault-at.
#
#   MICROPYPATH=.frozen:firmware:lib:. micropython tools/fault_sim.py --fault bitflip \
#       --fault-at 150 --load boards/sim/loads/four_quadrant.csv --speed max --duration 300
import sys

from boards.sim.ade7953_model import FAULTS
from boards.sim.board import SimBoard, parse_args


def main():
    argv = list(sys.argv[1:])
    kind = None
    if "--fault" in argv:
        i = argv.index("--fault")
        kind = argv[i + 1]
        del argv[i:i + 2]
    if kind is not None and kind not in FAULTS:
        sys.stderr.write("unknown fault %s (one of %s)\n" % (kind, ", ".join(FAULTS)))
        sys.exit(2)
    opts = parse_args(argv)
    opts.fault = kind
    board = SimBoard(opts)
    import app

    app.run(board)


main()
