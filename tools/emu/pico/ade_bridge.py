# The virtual board's ADE7953 register model behind the emulated RP2040's SPI0 (run by
# tools/emu/pico/pico_smoke.py on the MicroPython unix port; tools/emu/pico/run_pico.js talks
# to it over two FIFOs). Usage: micropython ade_bridge.py DIR P_W Q_VAR
#
# One request line -> one reply line "<value> <irq pin level>":
#   S <ms> <level>   CS pin (0 = selected)          -> "0 <irq>"
#   R <ms> <level>   RESET pin                      -> "0 <irq>"
#   X <ms> <byte>    one SPI byte clocked (MOSI)    -> "<MISO byte> <irq>"
#   I <ms>           IRQ pin query                  -> "0 <irq>"
# DIR/energy gets "<first ms> <last ms> <count>" of the driver's AENERGYA reads.
# <ms> is the emulated RP2040's time: the model integrates energy over it.
import sys

from boards.sim.ade7953_model import ADE7953Model


class _Const:
    """Constant load: (p_mw, q_mvar, next change None)."""

    def __init__(self, p_mw, q_mvar):
        self.v = (p_mw, q_mvar, None)

    def at(self, t):
        return self.v


def main():
    d = sys.argv[1]
    p_w = float(sys.argv[2])
    q_var = float(sys.argv[3])
    now = [0]
    model = ADE7953Model(_Const(int(p_w * 1000), int(q_var * 1000)), lambda: now[0])
    req = open(d + "/req", "rb")
    rep = open(d + "/rep", "wb")
    w = bytearray(1)
    r = bytearray(1)
    energy = []  # emulated ms of each AENERGYA read (the driver reads it once per interval)
    while True:
        line = req.readline()
        if not line:
            break
        parts = line.split()
        op = parts[0]
        now[0] = int(parts[1])
        out = 0
        if op == b"S":
            model.select(int(parts[2]))
        elif op == b"R":
            model.reset_pin(int(parts[2]))
        elif op == b"X":
            w[0] = int(parts[2])
            pos = model._pos
            model.transfer(w, r)
            out = r[0]
            if pos == 2 and model._cmd and model._addr in (0x21E, 0x31E):
                energy.append(now[0])
                with open(d + "/energy", "w") as f:
                    f.write("%d %d %d\n" % (energy[0], energy[-1], len(energy)))
        rep.write(b"%d %d\n" % (out, model.irq_pin()))


main()
