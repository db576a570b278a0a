# Display task: the LCD's scroll list, fed from register snapshots.
"""LCD task.

Auto-scroll list (default, hold ``scroll_ms`` = 10 s of real time): A+ 1.8.0 and A- 2.8.0
(kWh, 3 decimals), net 16.8.0 ("NT", kWh), V 32.7.0, I 31.7.0 (A), P 1.7.0 (kW, signed: + import),
f 14.7.0 (Hz). The state annunciators show the flow direction (IMPORT / EXPORT arrow), tariff
T1, ALARM while the metrology is faulty, RELAY when the relay is open. At start-up the
segment test and the firmware version are shown, each for one hold time. Runs on real time
(``time.ticks_ms``) even when the virtual board's metering clock runs faster.
"""

import asyncio
import time

import lcd


class DisplayTask:
    def __init__(self, meter, device, cfg):
        self.meter = meter
        self.device = device
        regs = meter.registers
        m = meter.metering

        def reg_kwh(obis):
            return lambda: regs.value_milli(obis) // 1000  # mWh -> Wh = kWh/1000

        def inst(key, scale):
            def get():
                v = m.instant
                if v is None:
                    raise ValueError("no reading yet")
                return int(v[key] * scale)

            return get

        dec = cfg.get("energy_decimals", 3)
        self.auto = [
            ("1.8.0", reg_kwh("1.8.0"), dec, lcd.ANN_IMPORT, "kWh"),
            ("2.8.0", reg_kwh("2.8.0"), dec, lcd.ANN_EXPORT, "kWh"),
            ("NT", reg_kwh("16.8.0"), dec, 0, "kWh"),
            ("32.7.0", inst("V", 1000), 1, 0, "V"),
            ("31.7.0", inst("I", 1000), 3, 0, "A"),
            ("1.7.0", inst("P", 1), 3, 0, "W"),
            ("14.7.0", inst("f", 1000), 2, 0, "Hz"),
        ]
        self.display = lcd.Display(auto=self.auto, hold_ms=cfg.get("scroll_ms", 10000),
                                   ticks_diff=time.ticks_diff)
        self._version = meter_version()

    def flags(self):
        m = self.meter.metering
        f = lcd.ANN_T1
        inst = m.instant
        if inst is not None and not m.no_load:
            f |= lcd.ANN_EXPORT if inst["P"] < 0 else lcd.ANN_IMPORT
        if not m.ok:
            f |= lcd.ANN_ALARM
        relay = self.meter.board.relay
        if relay is not None and not relay.value():
            f |= lcd.ANN_RELAY
        return f

    async def run(self):
        d = self.display
        dev = self.device
        now = time.ticks_ms()
        dev.show(d.segment_test(now))
        await asyncio.sleep_ms(min(d.hold_ms, 3000))
        now = time.ticks_ms()
        dev.show(d.version_frame(self._version, now))
        await asyncio.sleep_ms(min(d.hold_ms, 3000))
        d.set_list(lcd.LIST_AUTO, time.ticks_ms())
        while True:
            fl = self.flags()
            if fl != d.flags:
                d.set_flags(fl)
            if d.tick(time.ticks_ms()):
                dev.show(d.frame)
            await asyncio.sleep_ms(250)


def meter_version():
    import app

    return app.VERSION
