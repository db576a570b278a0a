# Boards: the only package that touches `machine`. One module (or package) per board.
