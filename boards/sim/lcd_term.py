"""The virtual board's LCD: draws lib.lcd frames in a terminal.

``TermLCD(stream=None, ansi=True, seven_segment=True)``:

- ``ansi=True, seven_segment=True``: an annunciator line (identifier + lit annunciator names)
  over three rows of 7-segment art for the 8 digits with their decimal points, redrawn in place
  (cursor up ``ESC[nA``, clear line ``ESC[2K``),
- ``ansi=True, seven_segment=False``: the plain-text line (``lcd.frame_text``) redrawn in place,
- ``ansi=False``: one plain-text line per new frame, appended (CI, logs).

Identical frames are not redrawn. ``last_text`` is ``frame_text`` of the last drawn frame and
``frames_shown`` counts the draws. Writes with ``stream.write`` (default ``sys.stdout``), so it
runs on MicroPython as well as CPython.
"""

import sys

from lcd import DIGITS, SEG_A, SEG_B, SEG_C, SEG_D, SEG_DP, SEG_E, SEG_F, SEG_G
from lcd import Frame, ann_text, frame_text

_ESC = "\x1b["


def art_rows(frame):
    """Three strings of 7-segment art, 4 columns per digit (3 for the digit, 1 for its point)::

         _     _       row 0: a
        |_|  | _|      row 1: f g b
         _|  ||_ .     row 2: e d c dp
    """
    r0 = []
    r1 = []
    r2 = []
    for i in range(DIGITS):
        c = frame.cells[i]
        r0.append(" _  " if c & SEG_A else "    ")
        r1.append(("|" if c & SEG_F else " ") + ("_" if c & SEG_G else " ")
                  + ("|" if c & SEG_B else " ") + " ")
        r2.append(("|" if c & SEG_E else " ") + ("_" if c & SEG_D else " ")
                  + ("|" if c & SEG_C else " ") + ("." if c & SEG_DP else " "))
    return ["".join(r0).rstrip(), "".join(r1).rstrip(), "".join(r2).rstrip()]


def header_row(frame):
    """Identifier (padded to 6) and the names of the lit annunciators."""
    return ("%-6s  %s" % (frame.ident, ann_text(frame.ann))).rstrip()


class TermLCD:
    """Terminal display device with ``show(frame)`` (see module doc)."""

    def __init__(self, stream=None, ansi=True, seven_segment=True):
        self._out = stream if stream is not None else sys.stdout
        self.ansi = ansi
        self.seven_segment = seven_segment
        self.last_text = ""
        self.frames_shown = 0
        self._last = Frame()
        self._lines = 0  # lines drawn last time (for the in-place redraw)

    def lines(self, frame):
        """The lines that ``show`` would draw for ``frame`` (without ANSI codes)."""
        if self.ansi and self.seven_segment:
            return [header_row(frame)] + art_rows(frame)
        return [frame_text(frame)]

    def show(self, frame):
        """Draw ``frame`` unless it equals the last drawn one. Returns True if drawn."""
        if self.frames_shown and frame.same(self._last):
            return False
        lines = self.lines(frame)
        w = self._out.write
        if self.ansi:
            if self._lines:
                w("%s%dA" % (_ESC, self._lines))
            for ln in lines:
                w("\r" + _ESC + "2K" + ln + "\n")
            self._lines = len(lines)
        else:
            for ln in lines:
                w(ln + "\n")
        if hasattr(self._out, "flush"):
            self._out.flush()
        self._last.copy_from(frame)
        self.last_text = frame_text(frame)
        self.frames_shown += 1
        return True
