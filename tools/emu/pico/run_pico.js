// Raspberry Pi Pico (RP2040) under rp2040js (npm, pinned in tools/emu/versions.env) running a
// MicroPython UF2, with the meter's outside world attached (tools/emu/pico/pico_smoke.py).
//
//   node run_pico.js --uf2 FW.uf2 --bootrom B1.bin [--repl-tcp P] [--optical-tcp P]
//                    [--ade-fifo DIR] [--seconds S] [--stats FILE]
//
// - USB CDC (the MicroPython REPL) on 127.0.0.1:--repl-tcp (one client).
// - SPI0 + GPIO17 (CS) + GPIO20 (IRQ) + GPIO21 (RESET): an ADE7953, whose register behaviour
//   is the virtual board's model (boards/sim/ade7953_model.py) run by ade_bridge.py over two
//   FIFOs in --ade-fifo (synchronous request/reply lines; the emulator waits for each reply).
// - Optical port: GPIO6 (TX, PIO0 SM1) / GPIO7 (RX, PIO0 SM0), 7E1 at the rate the PIO
//   state machines are clocked for (read from their CLKDIV registers), bridged to
//   127.0.0.1:--optical-tcp as bytes.
// - I2C0: no device answers (the board runs without its MCP23017 expander).
// - QSPI flash: rp2040js reads it but does not program or erase it, so the root file system
//   cannot be created and rp2.Flash writes are lost (the smoke test runs the meter with the
//   board's flash off).
'use strict';
const fs = require('fs');
const net = require('net');
const path = require('path');
const rp = require(process.env.RP2040JS || 'rp2040js');

function arg(name, dflt) {
  const i = process.argv.indexOf('--' + name);
  return i > 0 ? process.argv[i + 1] : dflt;
}

const sim = new rp.Simulator();
const mcu = sim.rp2040;
mcu.logger = new rp.ConsoleLogger(rp.LogLevel.Error);
const bootrom = fs.readFileSync(arg('bootrom'));
mcu.loadBootrom(new Uint32Array(bootrom.buffer.slice(bootrom.byteOffset, bootrom.byteOffset + bootrom.length)));

// -- UF2 into flash -------------------------------------------------------------------------
const uf2 = fs.readFileSync(arg('uf2'));
for (let o = 0; o + 512 <= uf2.length; o += 512) {
  const addr = uf2.readUInt32LE(o + 12), size = uf2.readUInt32LE(o + 16);
  mcu.flash.set(uf2.subarray(o + 32, o + 32 + size), addr - 0x10000000);
}

const nowMs = () => Math.floor(mcu.clock.nanos / 1e6);
const stats = { boot_ms: null, spi_bytes: 0, optical_tx: 0, optical_rx: 0 };

// -- ADE7953 on SPI0 through the Python model ----------------------------------------------
let adeReq = null, adeRep = null;
const CS = 17, IRQ = 20, RST = 21;
function ade(line) {
  fs.writeSync(adeReq, line + '\n');
  let out = '';
  const b = Buffer.alloc(64);
  while (!out.endsWith('\n')) {
    const n = fs.readSync(adeRep, b, 0, 64, null);
    if (n <= 0) throw new Error('ade bridge closed');
    out += b.toString('latin1', 0, n);
  }
  const [v, irq] = out.trim().split(' ').map(Number);
  mcu.gpio[IRQ].setInputValue(irq === 1);
  return v;
}
if (arg('ade-fifo')) {
  const d = arg('ade-fifo');
  adeReq = fs.openSync(path.join(d, 'req'), 'w');
  adeRep = fs.openSync(path.join(d, 'rep'), 'r');
  const level = (st) => (st === rp.GPIOPinState.High || st === rp.GPIOPinState.InputPullUp ? 1 : 0);
  mcu.gpio[CS].addListener((st, old) => { if (level(st) !== level(old)) ade('S ' + nowMs() + ' ' + level(st)); });
  mcu.gpio[RST].addListener((st, old) => { if (level(st) !== level(old)) ade('R ' + nowMs() + ' ' + level(st)); });
  mcu.spi[0].onTransmit = (v) => { stats.spi_bytes++; mcu.spi[0].completeTransmit(ade('X ' + nowMs() + ' ' + v)); };
  const poll = mcu.clock.createAlarm(() => { ade('I ' + nowMs()); poll.schedule(5e6); });
  poll.schedule(5e6);
} else {
  mcu.spi[0].onTransmit = () => mcu.spi[0].completeTransmit(0);
}

// -- UARTs: the PL011 TX interrupt is edge-triggered (it asserts when the FIFO level passes
// through the trigger level, ARM PL011 TRM 2.4.3); rp2040js re-asserts it on every register
// access, which storms a driver that leaves TXIM unmasked (MicroPython's rp2 UART does).
const UARTTXINTR = 1 << 5;
for (const u of mcu.uart) {
  u.checkInterrupts = function () {
    this.rp2040.setInterrupt(this.irq, !!(this.interruptStatus & this.interruptMask));
  };
  const w = u.writeUint32.bind(u);
  u.writeUint32 = (offset, value) => {
    w(offset, value);
    if (offset === 0) {        // UARTDR: the byte leaves at once; the FIFO passes the level
      u.interruptStatus |= UARTTXINTR;
      u.checkInterrupts();
    }
  };
}

// -- I2C0: nobody home ----------------------------------------------------------------------
for (const i2c of mcu.i2c) {
  i2c.onStart = () => i2c.completeStart();
  i2c.onConnect = () => i2c.completeConnect(false);
  i2c.onStop = () => i2c.completeStop();
}

// -- USB CDC: the REPL -----------------------------------------------------------------------
const cdc = new rp.USBCDC(mcu.usbCtrl);
let replSock = null;
const replOut = [];
cdc.onDeviceConnected = () => { stats.boot_ms = nowMs(); };
cdc.onSerialData = (buf) => { if (replSock) replSock.write(Buffer.from(buf)); else replOut.push(Buffer.from(buf)); };
if (arg('repl-tcp')) {
  net.createServer((s) => {
    replSock = s;
    for (const b of replOut.splice(0)) s.write(b);
    s.on('data', (d) => { for (const c of d) cdc.sendSerialByte(c); });
    s.on('close', () => { replSock = null; });
  }).listen(Number(arg('repl-tcp')), '127.0.0.1');
}

// -- PIO clocked by the emulated clock: rp2040js runs 1000 PIO steps per JavaScript event-loop
// turn, whatever the CLKDIV (so a PIO UART's bit time would follow the host, not the RP2040).
// Each state machine is stepped here at clk_sys / CLKDIV of emulated time instead.
for (const pio of mcu.pio) {
  pio.run = function () {};
  for (const sm of pio.machines) {
    // rp2040js executes an instruction per step() and only counts its delay cycles
    // (sm.cycles): the next step waits for them here.
    const al = mcu.clock.createAlarm(() => {
      let n = 1;
      if (sm.enabled) {
        const c0 = sm.cycles;
        sm.step();
        pio.checkChangedPins();
        n = Math.max(1, sm.cycles - c0);
      }
      const div = (sm.clockDivInt || 65536) + sm.clockDivFrac / 256;
      al.schedule(sm.enabled ? (n * div * 1e9) / mcu.clkSys : 1e6);
    });
    al.schedule(1e6);
  }
}

// -- Optical port: a 7E1 line on GPIO6/GPIO7 at the PIO state machines' rate -----------------
const PIO0 = 0x50200000, OPT_TX = 6, OPT_RX = 7, SM_RX = 0, SM_TX = 1, CYC_PER_BIT = 8;
function baud(sm) {
  const div = mcu.pio[0].machines[sm];
  const d = mcu.readUint32(PIO0 + 0xc8 + 0x18 * sm);
  const q = (d >>> 16) + ((d >>> 8) & 0xff) / 256;
  return mcu.clkSys / ((q || 65536) * CYC_PER_BIT);
}
let optSock = null;
(function optical() {
  // TX: decode frames from the edges of GPIO6
  let edges = [], t0 = null;
  const rd = mcu.clock.createAlarm(() => {
    const bitNs = 1e9 / baud(SM_TX);
    let v = 0, ones = 0;
    const at = (t) => { let lvl = 0; for (const [te, l] of edges) { if (te <= t) lvl = l; } return lvl; };
    for (let k = 0; k < 8; k++) {
      const b = at(t0 + (1.5 + k) * bitNs);
      if (k < 7) v |= b << k;
      ones += b;
    }
    const stop = at(t0 + 9.5 * bitNs);
    if (stop && ones % 2 === 0) {   // even parity over data + parity bit
      stats.optical_tx++;
      if (optSock) optSock.write(Buffer.from([v]));
    }
    edges = []; t0 = null;
  });
  mcu.gpio[OPT_TX].addListener((st, old) => {
    const lvl = st === rp.GPIOPinState.High ? 1 : 0;
    const t = mcu.clock.nanos;
    if (t0 === null) {
      if (lvl === 0) { t0 = t; edges = [[t, 0]]; rd.schedule(9.8 * 1e9 / baud(SM_TX)); }
    } else edges.push([t, lvl]);
  });
  // RX: send queued bytes on GPIO7
  const q = [];
  let busy = false;
  mcu.gpio[OPT_RX].setInputValue(true);
  const tx = mcu.clock.createAlarm(() => next());
  let bits = [];
  function next() {
    if (bits.length === 0) {
      if (q.length === 0) { busy = false; return; }
      const c = q.shift() & 0x7f;
      let p = 0; for (let k = 0; k < 7; k++) p ^= (c >> k) & 1;
      bits = [0]; for (let k = 0; k < 7; k++) bits.push((c >> k) & 1);
      bits.push(p, 1);
      stats.optical_rx++;
    }
    mcu.gpio[OPT_RX].setInputValue(bits.shift() === 1);
    tx.schedule(1e9 / baud(SM_RX));
  }
  if (arg('optical-tcp')) {
    net.createServer((s) => {
      optSock = s;
      s.on('data', (d) => { for (const c of d) q.push(c); if (!busy) { busy = true; next(); } });
      s.on('close', () => { optSock = null; });
    }).listen(Number(arg('optical-tcp')), '127.0.0.1');
  }
})();

// -- Run ------------------------------------------------------------------------------------
const seconds = Number(arg('seconds', '0'));
mcu.core.PC = 0x10000000;
const wall0 = Date.now();
function report() {
  stats.emulated_ms = nowMs();
  stats.wall_ms = Date.now() - wall0;
  if (arg('stats')) fs.writeFileSync(arg('stats'), JSON.stringify(stats));
}
setInterval(report, 1000);
if (seconds > 0) {
  const end = mcu.clock.createAlarm(() => { report(); process.exit(0); });
  end.schedule(seconds * 1e9);
}
process.on('SIGTERM', () => { report(); process.exit(0); });
sim.execute();
