"""SIMCom SIM800 (and SIM800C/L/H, SIM900-class) TCP/IP profile.

Command set and timeouts: SIM800 Series AT Command Manual V1.09 section 8.2 and TinyGSM
``TinyGsmClientSIM800.h``; URCs from the SIM800 Hardware Design V1.09:

- multi-connection mode ``AT+CIPMUX=1`` (allowed only in IP INITIAL, so the bring-up starts
  with ``AT+CIPSHUT``), non-transparent ``AT+CIPMODE=0``; our link is connection 0;
- quick send ``AT+CIPQSEND=1``: ``AT+CIPSEND=0,<len>`` -> ``>`` -> exactly len bytes ->
  ``DATA ACCEPT:0,<len>`` as soon as the module has the data (no wait for the TCP ACK);
- **manual receive** ``AT+CIPRXGET=1``: the module keeps received data, says
  ``+CIPRXGET: 1,0`` once, and we fetch it with ``AT+CIPRXGET=2,0,<n>`` ->
  ``+CIPRXGET: 2,0,<k>,<left>`` + k raw bytes + ``OK``. Chosen over the automatic push
  (``+RECEIVE,0,<len>:`` + data at any moment) because binary data then only ever arrives
  as the answer to our own command with a length we asked for: memory stays bounded (we ask
  for what fits), data can never be mistaken for a URC or a final answer, and the module
  buffers while we are busy (flow control instead of overrun);
- bring-up: ``AT+CSTT="apn","user","pwd"`` (IP START), ``AT+CIICR`` (up to 85 s,
  IP GPRSACT), ``AT+CIFSR`` (the IP address line and no OK, IP STATUS);
- ``AT+CIPSTART=0,"TCP","host",port`` -> ``OK``, then ``0, CONNECT OK`` / ``0, CONNECT
  FAIL`` / ``0, ALREADY CONNECT`` (75 s in multi-IP mode);
- ``AT+CIPCLOSE=0,1`` (quick close) -> ``0, CLOSE OK``; ``ERROR`` on a closed link counts
  as closed (G6.7); ``AT+CIPSHUT`` -> ``SHUT OK`` (65 s), back to IP INITIAL;
- ``AT+CPOWD=1`` -> ``NORMAL POWER DOWN``.
"""

from modem.at import R_FINAL, R_OK, Command
from modem.profile import (
    L_PDP,
    L_POWER,
    L_RETRY,
    U_BOOT,
    U_CLOSED,
    U_CONNECT_FAIL,
    U_CONNECT_OK,
    U_DATA,
    U_INFO,
    U_OVERVOLT,
    U_PDP_DEACT,
    U_POWER_DOWN,
    U_UNDERVOLT,
    Profile,
    _quote,
    match_table,
    parse_int_field,
)

_PREFIXES = (
    (b"+CIPRXGET: 1,0", U_DATA),
    (b"+CIPRXGET: 1,", U_INFO),  # another link
    (b"+PDP: DEACT", U_PDP_DEACT),
    (b"RDY", U_BOOT),
    (b"NORMAL POWER DOWN", U_POWER_DOWN),
    (b"UNDER-VOLTAGE POWER DOWN", U_POWER_DOWN),
    (b"OVER-VOLTAGE POWER DOWN", U_POWER_DOWN),
    (b"UNDER-VOLTAGE WARN", U_UNDERVOLT),  # WARNNING (sic) and WARNING
    (b"OVER-VOLTAGE WARN", U_OVERVOLT),
    (b"0, CLOSED", U_CLOSED),
    (b"0, CONNECT OK", U_CONNECT_OK),
    (b"0, CONNECT FAIL", U_CONNECT_FAIL),
    (b"0, ALREADY CONNECT", U_CONNECT_FAIL),
    (b"Call Ready", U_INFO),
    (b"SMS Ready", U_INFO),
    (b"+CFUN:", U_INFO),
    (b"+CPIN:", U_INFO),
    (b"*PSUTTZ", U_INFO),
    (b"+CTZV", U_INFO),
    (b"DST:", U_INFO),
    (b"+CIEV", U_INFO),
    (b"+CMTI", U_INFO),
    (b"RING", U_INFO),
    (b"+SAPBR", U_INFO),
)
_SUFFIXES = (
    (b", CLOSED", U_INFO),  # links 1..5
    (b", CONNECT OK", U_INFO),
    (b", CONNECT FAIL", U_INFO),
)


def _rxget_len(line):
    # b"+CIPRXGET: 2,0,<k>,<left>" -> k
    return parse_int_field(line, b"+CIPRXGET: 2,", 1)


class Sim800(Profile):
    name = "SIM800"

    def urc_kind(self, line):
        """URC kind of a line (modem.profile U_*), 0 when it is not a URC."""
        if line == b"CLOSED":  # single-connection form
            return U_CLOSED
        return match_table(line, _PREFIXES, _SUFFIXES)

    def pdp_cmds(self, apn, user=b"", password=b""):
        """From any IP state to IP STATUS (PDP context up, local IP known)."""
        return [
            self.shut(),
            Command(b"AT+CIPMODE=0", 1000, level=L_PDP, tag="pdp"),
            Command(b"AT+CIPMUX=1", 1000, level=L_PDP, tag="pdp"),
            Command(b"AT+CIPQSEND=1", 1000, level=L_PDP, tag="pdp"),
            Command(b"AT+CIPRXGET=1", 1000, level=L_PDP, tag="pdp"),
            Command(b"AT+CSTT=" + _quote(apn) + b"," + _quote(user) + b"," + _quote(password),
                    60000, level=L_PDP, tag="pdp"),
            Command(b"AT+CIICR", 85000, level=L_PDP, tag="pdp"),
            Command(b"AT+CIFSR", 10000, line_final=True, level=L_PDP, tag="ip"),
        ]

    def shut(self):
        return Command(b"AT+CIPSHUT", 65000, finals=(b"SHUT OK",), level=L_POWER, tag="shut")

    def open(self, host, port):
        return Command(b'AT+CIPSTART=0,"TCP",' + _quote(host) + b"," + str(int(port)).encode(),
                       75000, ok_final=False, finals=(b"0, CONNECT OK",),
                       fails=(b"0, CONNECT FAIL", b"0, ALREADY CONNECT"), level=L_RETRY,
                       tag="open")

    def close(self):
        return Command(b"AT+CIPCLOSE=0,1", 5000, finals=(b"0, CLOSE OK",), level=L_PDP,
                       tag="close")

    def send(self, payload):
        c = Command(b"AT+CIPSEND=0," + str(len(payload)).encode(), 10000, payload=payload,
                    prompt_ms=3000, finals=(b"DATA ACCEPT:0,", b"0, SEND OK"),
                    fails=(b"0, SEND FAIL", b"SEND FAIL"), level=L_RETRY, tag="send")
        c.arg = len(payload)
        return c

    @staticmethod
    def sent(res):
        """True when the answer accepts the whole payload."""
        if res.status != R_FINAL:
            return False
        f = res.final
        if f.startswith(b"DATA ACCEPT:0,"):
            return parse_int_field(f, b"DATA ACCEPT:", 1) == res.cmd.arg
        return True

    _rd = None  # the last read command (an idle link asks for max_read every time)

    def read(self, n):
        c = self._rd
        if c is None or c.arg != n:
            c = self._rd = self._read(n)
        return c

    @staticmethod
    def _read(n):
        c = Command(b"AT+CIPRXGET=2,0," + str(n).encode(), 5000, prefix=b"+CIPRXGET: 2,",
                    binary=_rxget_len, level=L_RETRY, tag="read")
        c.arg = n
        c.wire = c.text + b"\r"
        return c

    @staticmethod
    def read_result(res):
        """(data bytes, more waiting) from a read answer, or None when it breaks the
        protocol (more bytes than asked for, truncated data, no header)."""
        if res.status != R_OK or res.truncated:
            return None
        if not res.lines:
            return (b"", False)  # nothing waiting (some firmware answer just OK)
        hdr = res.lines[0]
        k = _rxget_len(hdr)
        left = parse_int_field(hdr, b"+CIPRXGET: 2,", 2)
        data = res.data if res.data is not None else b""
        if k < 0 or k > res.cmd.arg or len(data) != k or left < 0:
            return None
        return (data, left > 0)

    def power_off(self):
        return Command(b"AT+CPOWD=1", 10000, finals=(b"NORMAL POWER DOWN",), level=L_POWER,
                       tag="cpowd")
