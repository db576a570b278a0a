"""Quectel M95 / M66 TCP/IP profile: the same manager, another command table.

Commands (Quectel M95 AT Commands Manual; TinyGSM ``TinyGsmClientM95.h``): APN with
``AT+QIFGCNT=0`` + ``AT+QICSGP=1,"apn","user","pwd"``, non-transparent ``AT+QIMODE=0``,
multi-link ``AT+QIMUX=1``, data indication ``AT+QINDI=1`` (``+QIRDI:`` URC, data kept in the
module until read: the same manual-receive choice as on the SIM800), ``AT+QIREGAPP``,
``AT+QIACT`` (60 s), ``AT+QILOCIP`` (the IP address line, no OK),
``AT+QIOPEN=0,"TCP","host",port`` -> ``OK`` then ``0, CONNECT OK``,
``AT+QISEND=0,<len>`` -> ``>`` -> ``SEND OK``, ``AT+QIRD=0,1,0,<len>`` ->
``+QIRD: <ip>:<port>,TCP,<len>`` + data + ``OK``, ``AT+QICLOSE=0`` -> ``0, CLOSE OK``,
``AT+QIDEACT`` -> ``DEACT OK`` (60 s), ``AT+QPOWD=1`` -> ``NORMAL POWER DOWN``.

Not run against a modem or a model here: its command table and answer parsing are checked
through the AT engine with scripted answers (host_tests/unit/test_modem_profiles.py).
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
)

_PREFIXES = (
    (b"+QIRDI:", U_DATA),
    (b"+PDP DEACT", U_PDP_DEACT),
    (b"RDY", U_BOOT),
    (b"NORMAL POWER DOWN", U_POWER_DOWN),
    (b"UNDER_VOLTAGE POWER DOWN", U_POWER_DOWN),
    (b"OVER_VOLTAGE POWER DOWN", U_POWER_DOWN),
    (b"UNDER_VOLTAGE WARNING", U_UNDERVOLT),
    (b"OVER_VOLTAGE WARNING", U_OVERVOLT),
    (b"0, CLOSED", U_CLOSED),
    (b"0, CONNECT OK", U_CONNECT_OK),
    (b"0, CONNECT FAIL", U_CONNECT_FAIL),
    (b"0, ALREADY CONNECT", U_CONNECT_FAIL),
    (b"Call Ready", U_INFO),
    (b"+CFUN:", U_INFO),
    (b"+CPIN:", U_INFO),
    (b"+QNITZ", U_INFO),
    (b"+CTZV", U_INFO),
    (b"+CMTI", U_INFO),
    (b"RING", U_INFO),
)
_SUFFIXES = ((b", CLOSED", U_INFO),)


def _qird_len(line):
    # b"+QIRD: 1.2.3.4:1883,TCP,<len>" -> len
    i = line.rfind(b",")
    if i < 0:
        return -1
    try:
        return int(line[i + 1:])
    except ValueError:
        return -1


class M95(Profile):
    name = "M95"

    def urc_kind(self, line):
        if line == b"CLOSED":
            return U_CLOSED
        return match_table(line, _PREFIXES, _SUFFIXES)

    def pdp_cmds(self, apn, user=b"", password=b""):
        return [
            self.shut(),
            Command(b"AT+QIFGCNT=0", 1000, level=L_PDP, tag="pdp"),
            Command(b"AT+QICSGP=1," + _quote(apn) + b"," + _quote(user) + b","
                    + _quote(password), 1000, level=L_PDP, tag="pdp"),
            Command(b"AT+QIMODE=0", 1000, level=L_PDP, tag="pdp"),
            Command(b"AT+QIMUX=1", 1000, level=L_PDP, tag="pdp"),
            Command(b"AT+QINDI=1", 1000, level=L_PDP, tag="pdp"),
            Command(b"AT+QIREGAPP", 60000, level=L_PDP, tag="pdp"),
            Command(b"AT+QIACT", 150000, level=L_PDP, tag="pdp"),
            Command(b"AT+QILOCIP", 10000, line_final=True, level=L_PDP, tag="ip"),
        ]

    def shut(self):
        return Command(b"AT+QIDEACT", 60000, finals=(b"DEACT OK",), level=L_POWER, tag="shut")

    def open(self, host, port):
        return Command(b'AT+QIOPEN=0,"TCP",' + _quote(host) + b"," + str(int(port)).encode(),
                       75000, ok_final=False, finals=(b"0, CONNECT OK",),
                       fails=(b"0, CONNECT FAIL", b"0, ALREADY CONNECT"), level=L_RETRY,
                       tag="open")

    def close(self):
        return Command(b"AT+QICLOSE=0", 5000, finals=(b"0, CLOSE OK", b"CLOSE OK"),
                       level=L_PDP, tag="close")

    def send(self, payload):
        c = Command(b"AT+QISEND=0," + str(len(payload)).encode(), 10000, payload=payload,
                    prompt_ms=3000, finals=(b"SEND OK",), fails=(b"SEND FAIL",),
                    level=L_RETRY, tag="send")
        c.arg = len(payload)
        return c

    @staticmethod
    def sent(res):
        return res.status == R_FINAL

    def read(self, n):
        c = Command(b"AT+QIRD=0,1,0," + str(n).encode(), 5000, prefix=b"+QIRD:",
                    binary=_qird_len, level=L_RETRY, tag="read")
        c.arg = n
        return c

    @staticmethod
    def read_result(res):
        if res.status != R_OK or res.truncated:
            return None
        if not res.lines:
            return (b"", False)
        k = _qird_len(res.lines[0])
        data = res.data if res.data is not None else b""
        if k < 0 or k > res.cmd.arg or len(data) != k:
            return None
        return (data, k == res.cmd.arg)  # a full read: ask again

    def power_off(self):
        return Command(b"AT+QPOWD=1", 10000, finals=(b"NORMAL POWER DOWN",), level=L_POWER,
                       tag="qpowd")
