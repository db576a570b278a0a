# ruff: noqa: F821  (a MicroPython manifest: module/options come from the tool)
# The real boards' modules (the virtual board, boards/sim/, is for the unix port only):
# the interface (board.py) and, per ``options.board`` ("pico", "stm32" or "all"), the board.
options.defaults(board="all")

_mods = ["__init__.py", "board.py"]
if options.board in ("pico", "all"):
    _mods += ["pico.py", "rp2_pio_uart.py", "rp2_flash.py", "file_blocks.py"]
if options.board in ("stm32", "all"):
    _mods += ["stm32.py", "stm32_flash.py", "file_blocks.py"]
for _m in sorted(set(_mods)):
    module("boards/" + _m, base_path="..", opt=3)
