# The virtual board's end-of-run report: the summary lines and the --json line.
"""What the virtual board prints when a run ends (orderly, Ctrl-C or a power loss): the
short human summary of the registers (unless ``--quiet``) and, with ``--json``, one JSON
line (numbers to 3 decimals, the registers' 1 mWh)."""

import gc
import sys
import time

def error_flags_of(meter):
    # F.F.0 (firmware/meter/status.py), for the report
    st = getattr(meter, "status", None)
    return None if st is None else st.error_flags()


class Milli:
    """A value in thousandths written as an exact decimal with 3 places (no float noise:
    the registers' resolution is 1 mWh / mvarh / mVAh)."""

    def __init__(self, m):
        self.m = m


def milli_text(m):
    """Thousandths as a decimal string: 8499 -> "8.499", -5 -> "-0.005"."""
    sign = "-" if m < 0 else ""
    m = -m if m < 0 else m
    return "%s%d.%03d" % (sign, m // 1000, m % 1000)


def json_text(o):
    """JSON text of dicts, lists, str, int, bool, None and :class:`Milli` values."""
    import json

    if isinstance(o, Milli):
        return milli_text(o.m)
    if isinstance(o, dict):
        return "{" + ", ".join(json.dumps(str(k)) + ": " + json_text(v)
                               for k, v in o.items()) + "}"
    if isinstance(o, (list, tuple)):
        return "[" + ", ".join(json_text(v) for v in o) + "]"
    return json.dumps(o)


# the summary's rows: (label, OBIS, unit) pairs, two per line
_SUMMARY = ((("A+", "1.8.0", "Wh"), ("A-", "2.8.0", "Wh")),
            (("R+", "3.8.0", "varh"), ("R-", "4.8.0", "varh")),
            (("Q1", "5.8.0", "varh"), ("Q2", "6.8.0", "varh")),
            (("Q3", "7.8.0", "varh"), ("Q4", "8.8.0", "varh")),
            (("S+", "9.8.0", "VAh"), ("S-", "10.8.0", "VAh")),
            (("net", "16.8.0", "Wh"),))


def summary(regs, clock, wall_ms, power_lost=False):
    """The short human summary printed at the end of a timed run (lines <= 80 columns)."""
    from civil import civil

    y, mo, d, h, mi, s, _ = civil(clock.time())
    lines = ["", "sim: %s at t = %s s (RTC %04d-%02d-%02d %02d:%02d:%02d UTC%s), %s s wall"
             % ("power lost" if power_lost else "end", milli_text(clock.ticks_ms()), y, mo, d,
                h, mi, s, "" if clock.rtc_valid else ", INVALID", milli_text(wall_ms))]
    for row in _SUMMARY:
        lines.append("    ".join("%-3s %-6s %13s %-4s" % (lab, obis, milli_text(regs[obis]), u)
                                 for lab, obis, u in row).rstrip())
    return "\n".join(lines) + "\n"


def steady_heap():
    if not hasattr(gc, "mem_alloc"):
        return 0
    gc.collect()
    return gc.mem_alloc()


def o_csv(board):
    return getattr(board.opts, "profile_csv", None)


def write_profile_csv(profiles, path):
    """--profile-csv PATH: each load profile as CSV (meter/profile.LoadProfile.csv_lines),
    P.01 to PATH, P.02 / P.03 to PATH.p02.csv / PATH.p03.csv; a file error is reported on
    stderr (the run's result stands)."""
    for i, p in enumerate(profiles.items):
        name = path if i == 0 else "%s.p0%d.csv" % (path, i + 1)
        try:
            with open(name, "w") as f:
                for line in p.csv_lines():
                    f.write(line)
                    f.write("\n")
        except OSError as e:
            sys.stderr.write("sim: --profile-csv %s: %s\n" % (name, e))


def report(board, meter, power_lost=False):
    """At the end of a run (orderly or power lost): persist the RTC, print the summary of
    the registers (unless --quiet) and the JSON line (--json). The status LEDs are reported
    as the supervisor last set them, at most one simulated second before the end at any
    --speed (firmware/tasks/supervisor.py runs on the board clock)."""
    if getattr(board, "_reported", False):
        return
    board._reported = True
    board.save_rtc()
    regs = meter.registers.snapshot()
    if o_csv(board) and getattr(meter, "profiles", None) is not None:
        write_profile_csv(meter.profiles, board.opts.profile_csv)
    wall_ms = time.ticks_diff(time.ticks_ms(), board._wall0)
    o = board.opts
    if not o.quiet:  # end of a timed run, Ctrl-C or a power loss
        if hasattr(board.lcd, "refresh"):
            board.lcd.refresh()  # the status line at the end
        sys.stdout.write(summary(regs, board.clock, wall_ms, power_lost))
    if not o.json:
        return
    out = {
        "registers": {k: Milli(regs[k]) for k in regs},
        "sim_s": Milli(board.clock.ticks_ms()),
        "wall_s": Milli(wall_ms),
        "rtc_s": board.clock.time(),
        "rtc_valid": board.clock.rtc_valid,
        "error_flags": error_flags_of(meter),
        "heap_peak_bytes": board.heap_peak,
        "heap_steady_bytes": steady_heap(),
        "pulses": meter.output.pulse.total,
        "led_kwh_flashes": board.led_kwh.rises,
        "led_kvarh_flashes": board.led_kvarh.rises,
        "events": [[t, c, v] for (t, c, v) in meter.log.entries()],
        "fault": meter.metering.fault,
        "power_lost": power_lost,
        "wdt_feeds": board.wdt.feeds,
        "status_leds": [list(led.get()) for led in board.status_leds],
        "flash_ops": board.nor.ops,
        "commits": meter.storage.commits if meter.storage else 0,
        "storage": meter.storage_status,
    }
    b = _billing_report(meter)
    if b is not None:
        out["billing"] = b
    out.update(_port_report(board, meter))
    pr = getattr(meter, "profiles", None)
    if pr is not None:  # rows captured in this run, rows that could not be written
        out["profile"] = {p.name: {"rows": p.rows, "lost": p.lost} for p in pr.items}
    cc = getattr(meter, "concentrator", None)
    if cc is not None:  # the RS-485 bus master (firmware/uplink/concentrator.py)
        out["concentrator"] = cc.stats()
    up = getattr(meter, "uplink", None)
    if up is not None:
        out["uplink"] = st = up.stats()
        t_up = getattr(board, "net_up_tick", None)
        if t_up is not None and up.drain_end is not None:
            d = time.ticks_diff(up.drain_end, t_up)
            st["restore_to_drained_ms"] = d if d >= 0 else None
        out["uplink_leds"] = [list(led.get()) for led in board.uplink_leds]
    sys.stdout.write(json_text(out) + "\n")


def _billing_report(meter):
    # --json: the billing functions (firmware/meter/billing.py): active tariff, VZ, demand
    # (W, 3 decimals = mW), maxima with their RTC time stamps, the snapshots kept
    bl = getattr(meter, "billing", None)
    if bl is None:
        return None
    from billing.period import ENERGY_OBIS

    d = bl.demand
    mx = d.maxima
    w = d.window
    snaps = []
    for s in bl.snapshots():
        tar = {}
        for k in range(12):
            tar["%d.8.%d" % (1 + k // 6, 1 + k % 6)] = s.tariffs[k]
        snaps.append({"vz": s.vz, "time": s.time, "reason": s.reason,
                      "clock_status": s.clock_status,
                      "energy_wh": {ENERGY_OBIS[k]: s.energy[k] for k in range(8)},
                      "tariffs_wh": tar,
                      "max_w": {"1.6.%d" % k: [s.max_value[k], s.max_time[k]]
                                for k in range(7)},
                      "cum_w": {"1.2.%d" % k: s.cum[k] for k in range(7)}})
    return {
        "active_tariff": meter.tariffs.active,
        "vz": bl.vz,
        "last_end": bl.last_end,
        "next_end": bl.next_end,
        "max_demand": {"1.6.%d" % k: [Milli(mx.value[k]), mx.time[k]] for k in range(7)},
        "cum_demand": {"1.2.%d" % k: Milli(mx.cum[k]) for k in range(7)},
        "demand": {"last": Milli(w.last_average), "capture_time": w.capture_time,
                   "current": Milli(w.current_average()), "captures": w.captures,
                   "thermal": Milli(d.thermal.value)},
        "resets": mx.resets,
        "snapshots": snaps,
        "flash": bl.status,
    }


def _port_report(board, meter):
    # --json: counters of the IEC 62056-21 ports (port task and UART), heap log
    out = {}
    ports = {}
    for name, st in getattr(meter, "port_stats", {}).items():
        u = board.uart_optical if name == "optical" else board.uart_rs485
        ports[name] = {"rx": st.rx, "tx": st.tx, "messages": st.messages,
                       "errors": st.errors, "baud": st.baud,
                       "uart_rx": getattr(u, "rx_count", 0),
                       "overruns": getattr(u, "overruns", 0)}
    if ports:
        out["ports"] = ports
    if board.opts.heap_every:
        out["heap_log"] = board.heap_log()
    return out
