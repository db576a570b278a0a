"""The SIM800 model of the virtual board (boards/sim/modem.py) on its own: the AT set and
its quirks, the IP state machine, PWRKEY power, autobaud and wrong baud, scripted
conditions, and robustness against malformed commands."""

from boards.sim.modem import Sim800Model
from modemkit import Clock, Echo


class Bench:
    def __init__(self, **kw):
        self.clock = Clock(0)
        self.peers = []
        kw.setdefault("powered", True)
        self.m = Sim800Model(now_ms=self.clock, connect=self._connect, **kw)
        self.clock.advance(10)

    def _connect(self, host, port):
        if port == 9:
            raise OSError(111)
        p = Echo()
        self.peers.append(p)
        return p

    def at(self, cmd, wait=50):
        self.m.write(cmd + b"\r")
        self.clock.advance(wait)
        return self.m.read() or b""

    def raw(self, data, wait=50):
        self.m.write(data)
        self.clock.advance(wait)
        return self.m.read() or b""


def synced(**kw):
    b = Bench(**kw)
    assert b.at(b"AT") == b"", "autobaud: the first AT only syncs"
    assert b.at(b"AT") == b"AT\r\r\nOK\r\n", "echo is on after power-up"
    assert b.at(b"ATE0") == b"ATE0\r\r\nOK\r\n"
    return b


def test_basic_answers_and_errors():
    b = synced()
    assert b.at(b"AT+CSQ") == b"\r\n+CSQ: 20,0\r\n\r\nOK\r\n"
    assert b.at(b"AT+CGREG?").startswith(b"\r\n+CGREG: 0,")
    assert b.at(b"AT+XYZ") == b"\r\nERROR\r\n"
    assert b.at(b"AT+CMEE=1") == b"\r\nOK\r\n"
    assert b.at(b"AT+CIICR", 400) == b"\r\nERROR\r\n", "not in IP START"
    for bad in (b"AT+CMEE=\xb1", b"AT+CIPSEND=0,x", b"AT+CIPRXGET=2,0", b"AT+CIPSTART=0",
                b"\x00\xffAT", b"AT+CPIN=" + b"9" * 600):
        a = b.at(bad)
        assert a in (b"\r\nERROR\r\n", b"\r\n+CME ERROR: 3\r\n", b"\r\n+CME ERROR: 16\r\n",
                     b""), (bad, a)
    assert b.at(b"AT") == b"\r\nOK\r\n", "still answering"


def test_ip_state_machine_and_tcp_echo():
    b = synced()
    b.clock.advance(1500)
    assert b.at(b"AT+CIPSTART=0,\"TCP\",\"h\",1") == b"\r\nERROR\r\n", "IP INITIAL"
    for c in (b"AT+CIPMUX=1", b"AT+CIPQSEND=1", b"AT+CIPRXGET=1", b'AT+CSTT="internet"'):
        assert b.at(c) == b"\r\nOK\r\n", c
    assert b.at(b"AT+CIPMUX=1") == b"\r\nERROR\r\n", "only in IP INITIAL"
    assert b.at(b"AT+CIICR", 400) == b"\r\nOK\r\n" and b.m.ip_state == "IP GPRSACT"
    assert b.at(b"AT+CIFSR").startswith(b"\r\n10.64.") and b.m.ip_state == "IP STATUS"
    st = b.at(b"AT+CIPSTATUS")
    assert st.startswith(b"\r\nOK\r\n\r\nSTATE: IP STATUS\r\n"), st  # text after OK
    assert b.at(b'AT+CIPSTART=0,"TCP","h",9', 1100) == b"\r\nOK\r\n\r\n0, CONNECT FAIL\r\n"
    b.at(b"AT+CIPSHUT")
    for c in (b"AT+CIPMUX=1", b"AT+CIPQSEND=1", b"AT+CIPRXGET=1", b'AT+CSTT="x"'):
        b.at(c)
    b.at(b"AT+CIICR", 400)
    b.at(b"AT+CIFSR")
    assert b.at(b'AT+CIPSTART=0,"TCP","h",1883', 200) == b"\r\nOK\r\n\r\n0, CONNECT OK\r\n"
    assert b.at(b'AT+CIPSTART=0,"TCP","h",1883') == b"\r\n0, ALREADY CONNECT\r\n\r\nERROR\r\n"
    assert b.at(b"AT+CIPSEND=0,6") == b"\r\n> "
    a = b.raw(b"OK\r\n\x00\xff")
    assert a == b"\r\nDATA ACCEPT:0,6\r\n\r\n+CIPRXGET: 1,0\r\n", a
    assert b.at(b"AT+CIPRXGET=4,0") == b"\r\n+CIPRXGET: 4,0,6\r\n\r\nOK\r\n"
    assert b.at(b"AT+CIPRXGET=2,0,4") == b"\r\n+CIPRXGET: 2,0,4,2\r\nOK\r\n\r\nOK\r\n"
    assert b.at(b"AT+CIPRXGET=2,0,100") == b"\r\n+CIPRXGET: 2,0,2,0\r\n\x00\xff\r\nOK\r\n"
    assert b.at(b"AT+CIPSEND=0,1461") == b"\r\nERROR\r\n"
    assert b.at(b"AT+CIPCLOSE=0,1") == b"\r\n0, CLOSE OK\r\n" and b.peers[-1].closed
    assert b.at(b"AT+CIPCLOSE=0,1") == b"\r\nERROR\r\n"


def test_pwrkey_toggles_power():
    b = Bench(powered=False)
    assert b.at(b"AT") == b"" and not b.m.powered
    b.m.pwrkey.value(1)
    b.clock.advance(900)
    b.m.pwrkey.value(0)
    assert not b.m.powered, "a press under 1 s does nothing"
    b.m.pwrkey.value(1)
    b.clock.advance(1100)
    b.m.pwrkey.value(0)
    assert b.m.powered and b.m.power_ons == 1
    b.clock.advance(2600)
    b.at(b"AT")
    assert b.at(b"AT") == b"AT\r\r\nOK\r\n"
    b.m.pwrkey.value(1)
    b.clock.advance(1500)
    b.m.pwrkey.value(0)
    assert not b.m.powered and (b.m.read() or b"").endswith(b"NORMAL POWER DOWN\r\n")


def test_fixed_baud_boot_urcs_and_wrong_baud():
    b = Bench(baud=115200, powered=False)
    b.m.pwrkey.value(1)
    b.clock.advance(1100)
    b.m.pwrkey.value(0)
    b.clock.advance(2600)
    boot = b.m.read()
    assert boot.startswith(b"\r\nRDY\r\n") and b"Call Ready" in boot
    assert b.at(b"AT") == b"AT\r\r\nOK\r\n", "no autobaud sync needed"
    b.m.init(baudrate=9600)
    a = b.at(b"AT")
    assert a and a != b"AT\r\r\nOK\r\n" and b.m.garbled > 0, "scrambled echo"
    assert b.m.commands == 1, "the module could not read the second AT"


def test_scripted_conditions():
    b = synced()
    b.clock.advance(1500)
    assert b.at(b"AT+CREG?") == b"\r\n+CREG: 0,1\r\n\r\nOK\r\n"
    b.m.set_registration(3)
    assert b.at(b"AT+CGREG?") == b"\r\n+CGREG: 0,3\r\n\r\nOK\r\n"
    b.m.set_registration(None)
    b.m.network_down()
    assert b.at(b"AT+CSQ") == b"\r\n+CSQ: 99,0\r\n\r\nOK\r\n"
    assert b.at(b"AT+CREG?") == b"\r\n+CREG: 0,2\r\n\r\nOK\r\n"
    b.m.network_up()
    b.clock.advance(1100)
    b.m.set_signal(5)
    assert b.at(b"AT+CSQ") == b"\r\n+CSQ: 5,0\r\n\r\nOK\r\n"
    b.m.undervoltage()
    b.clock.advance(5)
    assert b.m.read() == b"\r\nUNDER-VOLTAGE WARNNING\r\n"
    b.m.hang()
    assert b.at(b"AT") == b""
    b.m.hang(False)
    b.m.garbage(100)
    b.clock.advance(1)
    assert len(b.m.read()) == 100
    b.m.set_sim("ABSENT")
    assert b.at(b"AT+CPIN?") == b"\r\nERROR\r\n"
    b.m.undervoltage(power_down=True)
    b.clock.advance(5)
    assert b.m.read() == b"\r\nUNDER-VOLTAGE POWER DOWN\r\n" and not b.m.powered
