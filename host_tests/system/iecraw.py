"""Raw IEC 62056-21 mode C bytes over TCP, for the system tests that check the meter's ports
byte for byte (where the PyPI client ``iec62056-21`` hides what is under test: BCCs, NAKs,
ER codes, foreign bytes on a bus). Frame layout: IEC 62056-21:2002 clause 6.3 (SOH/STX ...
ETX/EOT BCC; BCC = XOR of the bytes after SOH or STX up to ETX/EOT, 7 bits)."""

import socket
import time

SOH, STX, ETX, EOT, ACK, NAK = 1, 2, 3, 4, 6, 0x15


def bcc(body):
    """The block check character of ``body`` (the bytes after SOH/STX, ETX/EOT included)."""
    x = 0
    for c in body:
        x ^= c
    return x & 0x7F


def cmd(c, t, data=None):
    """A command message: ``c`` (P, W, R, E, B), type digit ``t``, optional data set text."""
    body = bytearray((ord(c), 0x30 + t))
    if data is not None:
        body.append(STX)
        body.extend(data.encode())
    body.append(ETX)
    return bytes((SOH,)) + bytes(body) + bytes((bcc(body),))


def error(code):
    """The meter's error message ``(ERnn)`` as a data block."""
    body = b"(ER%02d)" % code + bytes((ETX,))
    return bytes((STX,)) + body + bytes((bcc(body),))


class Client:
    """A TCP connection to a meter's port (the optical port, or a member of the RS-485 hub),
    connecting for up to ``wait`` s while the meter starts."""

    def __init__(self, port, wait=5.0):
        t0 = time.time()
        while True:
            try:
                self.s = socket.create_connection(("127.0.0.1", port), timeout=5)
                break
            except OSError:
                if time.time() - t0 > wait:
                    raise
                time.sleep(0.2)

    def drain(self):
        """Drop whatever arrived unasked."""
        self.s.setblocking(False)
        try:
            while self.s.recv(4096):
                pass
        except (BlockingIOError, OSError):
            pass
        self.s.setblocking(True)

    def read(self, timeout=3.0):
        """One message from the meter (ident line, ACK/NAK, a SOH/STX block with its BCC),
        b'' if none within ``timeout`` s; bytes that cannot start one (someone else's on a
        bus) are skipped."""
        buf = bytearray()
        end = time.time() + timeout
        while time.time() < end:
            self.s.settimeout(max(0.01, end - time.time()))
            try:
                d = self.s.recv(1)
            except socket.timeout:
                break
            if not d:
                break
            buf.extend(d)
            b0 = buf[0]
            if len(buf) == 1 and b0 in (ACK, NAK):
                return bytes(buf)
            if b0 == 0x2F and buf.endswith(b"\r\n"):
                return bytes(buf)
            if b0 in (STX, SOH) and len(buf) >= 3 and buf[-2] in (ETX, EOT):
                return bytes(buf)
            if b0 not in (ACK, NAK, 0x2F, STX, SOH):
                buf = bytearray()
        return bytes(buf)

    def x(self, data, timeout=3.0):
        """Send ``data`` (after draining) and return the answer (:meth:`read`)."""
        self.drain()
        self.s.sendall(data)
        return self.read(timeout)

    def prog(self, addr="", pw="00000000"):
        """Sign on, programming mode, P1; returns the answer to P1."""
        ident = self.x(b"/?" + addr.encode() + b"!\r\n")
        assert ident.startswith(b"/OMF5"), ident
        time.sleep(0.05)
        p0 = self.x(b"\x06051\r\n")
        assert p0.startswith(b"\x01P0"), p0
        return self.x(cmd("P", 1, "(%s)" % pw))

    def close(self):
        self.s.close()
