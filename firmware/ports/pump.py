"""Port task: pumps bytes between a UART and a protocol session (protocol-agnostic).

A session is sans-IO (today lib/iec62056/session.Session; DLMS/HDLC later): ``feed(buf,
now, n)`` and ``poll(now)`` return None or an action ``(at_ms, data, baud)`` (send ``data`` at
ticks ``at_ms``, then switch to ``baud`` if not 0), ``reset(now)`` after an error,
``link_lost(now)`` when the peer left, ``idle()`` when no dialogue is going on (slow
polling). One task per port (optical head or RS-485); it owns the port's writer. Protocol
timing uses the real clock (lib/ticks: ``ticks_ms`` wrapping at 2**30, and
``asyncio.sleep_ms``), never the board's metering clock, which runs faster than real time
on the virtual board.

The UART may be a ``machine.UART`` (rp2/stm32) or ``boards.sim.uart.TcpUart``/``BusUart``; it
needs ``any()``, ``readinto(buf)``, ``write(buf)``, ``init(baudrate=, bits=, parity=, stop=)``
and, for RS-485, ``txdone()`` (without it the transmit time is estimated from the baud rate).
Give the UART an rx buffer of at least 256 bytes. An action's data may also be a streamed
message (an object with ``chunks()``, e.g. lib/iec62056/session.Stream for a load profile):
its pieces are sent one after the other as they are produced.

Link: a UART that knows its peer (the virtual board's ``TcpUart``: ``clients``, the count of
TCP connections accepted, and ``connected``; ``BusUart``: ``clients``, the connections made to
the hub, and ``connected``) tells the
task when the link ends; the session is then told (``Session.link_lost``): programming rights
end with the link, and an answer still queued for the old peer is dropped, never sent to a
new one (checked again right before each transmission). A ``machine.UART`` has no link: an
optical head cannot be seen leaving, so rights end on the session's timeouts there.
"""

import asyncio


from ticks import ticks_diff as _ticks_diff
from ticks import ticks_ms as _ticks_ms

if not hasattr(asyncio, "sleep_ms"):  # CPython

    async def _sleep_ms(ms):
        await asyncio.sleep(ms / 1000)

else:
    _sleep_ms = asyncio.sleep_ms

_IDLE_POLL_MS = 20  # poll period while idle (a 300 Bd character takes 33 ms)
_BUSY_POLL_MS = 5  # poll period while a session is active
_TX_SLICE_MS = 70  # bound on one blocking UART write (stm32 UART.write blocks)


class PortStats:
    """Counters of one port task (read by diagnostics)."""

    def __init__(self):
        self.rx = 0
        self.tx = 0
        self.messages = 0
        self.errors = 0
        self.baud = 300


def _set_format(uart, baud, soft_parity):
    # 7E1 (IEC 62056-21 6.1: 1 start bit, 7 data bits, even parity, 1 stop bit), or 8N1
    # with the parity bit computed in software in bit 7 (a port without 7E1 framing).
    if soft_parity:
        uart.init(baudrate=baud, bits=8, parity=None, stop=1)
    else:
        uart.init(baudrate=baud, bits=7, parity=0, stop=1)


async def _transmit(uart, data, baud, de_pin, soft_parity, clock_ms, stats, link=None):
    # ``link``: the peer the data is for; a slice is never written once it has changed
    if soft_parity:
        from iec62056.codec import add_parity_into  # 7E1 as 8N1 characters

        data = add_parity_into(bytearray(data))
    mv = memoryview(data)
    n = len(data)
    chunk = max(1, baud * _TX_SLICE_MS // 10000)  # characters per slice (10 bits each)
    has_txdone = hasattr(uart, "txdone")
    if de_pin is not None:
        de_pin.value(1)
    try:
        i = 0
        while i < n:
            if link is not None and _link(uart) != link:
                break  # the peer left or was replaced: the rest is not for the new one
            k = uart.write(mv[i : i + chunk])
            if not k:  # write timed out: try again shortly
                await _sleep_ms(1)
                continue
            t0 = clock_ms()
            est = (k * 10000 + baud - 1) // baud
            i += k
            if has_txdone:
                # Wait for the last stop bit; bounded in case txdone() never comes true.
                while not uart.txdone() and _ticks_diff(clock_ms(), t0) < 2 * est + 100:
                    await _sleep_ms(1)
            else:
                await _sleep_ms(est + 1)
        stats.tx += n
        stats.messages += 1
    finally:
        if de_pin is not None:
            de_pin.value(0)


def _link(uart):
    # (peer generation, peer present): changes when the link ends or a new peer replaces it
    return getattr(uart, "clients", 0), getattr(uart, "connected", True)


async def run_port(
    uart, session, de_pin=None, clock_ms=None, soft_parity=False, stats=None, stop=None
):
    """Serve ``session`` on ``uart`` until ``stop`` (an object with ``is_set()``, e.g. an
    asyncio.Event) is set; runs forever when stop is None.

    de_pin: RS-485 driver enable (Pin-like ``value(v)``; high while transmitting, released
    after ``txdone()``). clock_ms: callable returning ms ticks (default ``ticks.ticks_ms``).
    soft_parity: the UART runs 8N1 and bit 7 carries the even parity (for ports without 7E1).
    stats: a PortStats to update. Bad input never ends the task: any error resets the
    session to idle at 300 Bd.
    """
    clock = clock_ms or _ticks_ms
    st = stats if stats is not None else PortStats()
    buf = bytearray(64)
    if de_pin is not None:
        de_pin.value(0)
    baud = 300
    _set_format(uart, baud, soft_parity)
    st.baud = baud
    gen, up = _link(uart)
    while stop is None or not stop.is_set():
        try:
            n = uart.any() and uart.readinto(buf)
            now = clock()
            g, u = _link(uart)
            if g != gen:  # a new peer: the old one's rights end before its successor speaks
                gen = g
                session.link_lost(now)
            act = session.feed(buf, now, n) if n else None
            if n:
                st.rx += n
            if up and not u:  # the peer left (after its last bytes were handled)
                session.link_lost(now)
                act = None
            up = u
            if act is None:
                act = session.poll(now)
            while act is not None:
                at, data, new_baud = act
                wait = _ticks_diff(at, clock())
                if wait > 0:
                    await _sleep_ms(wait)
                if data and _link(uart) != (gen, up):
                    # the peer changed while the answer waited: it is not for the new one
                    gen, up = _link(uart)
                    session.link_lost(clock())
                    act = session.poll(clock())
                    continue
                if data is not None and hasattr(data, "chunks"):  # a streamed message
                    for piece in data.chunks():
                        if _link(uart) != (gen, up):
                            break
                        await _transmit(uart, piece, baud, de_pin, soft_parity, clock, st,
                                        (gen, up))
                elif data:
                    await _transmit(uart, data, baud, de_pin, soft_parity, clock, st,
                                    (gen, up))
                if new_baud and new_baud != baud:
                    baud = new_baud
                    _set_format(uart, baud, soft_parity)
                    st.baud = baud
                act = session.poll(clock())
        except Exception:
            st.errors += 1
            session.reset(clock())
            if de_pin is not None:
                de_pin.value(0)
        await _sleep_ms(_IDLE_POLL_MS if session.idle() else _BUSY_POLL_MS)
