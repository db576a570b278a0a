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

Fits an 80-column terminal: in the ANSI modes no drawn line is wider than ``WIDTH`` (79)
columns (a line of exactly 80 makes some terminals wrap, which breaks the in-place redraw);
the annunciator names wrap onto a continuation line, and the in-place redraw clears lines
left over from a taller previous frame, so the picture keeps its height.
"""

import sys

from lcd import DIGITS, SEG_A, SEG_B, SEG_C, SEG_D, SEG_DP, SEG_E, SEG_F, SEG_G
from lcd import Frame, ann_text, frame_text

_ESC = "\x1b["
WIDTH = 79  # widest line drawn (columns)


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
    """Identifier (padded to 6) and the names of the lit annunciators (one line)."""
    return ("%-6s  %s" % (frame.ident, ann_text(frame.ann))).rstrip()


def fit(text, width=WIDTH, indent=8):
    """``text`` as lines of at most ``width`` columns, broken at the last space that fits
    (cut if there is none); continuation lines are indented by ``indent``."""
    out = []
    pad = ""
    while len(pad) + len(text) > width:
        room = width - len(pad)
        k = text.rfind(" ", 0, room + 1)
        if k <= 0:
            k = room
        out.append((pad + text[:k]).rstrip())
        text = text[k:].lstrip()
        pad = " " * indent
    out.append((pad + text).rstrip())
    return out


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
            return fit(header_row(frame)) + art_rows(frame)
        if self.ansi:
            return fit(frame_text(frame))
        return [frame_text(frame)]  # appended log lines: one per frame, never wrapped

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
            for _ in range(len(lines), self._lines):  # clear what a taller frame left
                w("\r" + _ESC + "2K\n")
            self._lines = max(len(lines), self._lines)
        else:
            for ln in lines:
                w(ln + "\n")
        if hasattr(self._out, "flush"):
            self._out.flush()
        self._last.copy_from(frame)
        self.last_text = frame_text(frame)
        self.frames_shown += 1
        return True
