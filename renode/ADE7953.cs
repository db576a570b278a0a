// ADE7953 single-phase energy metering IC as a Renode SPI peripheral, for the meter firmware
// on renode/stm32f4_meter.repl. UNVERIFIED: written for machines that have Renode (the
// project's CI cannot install it). Register behaviour from the ADE7953 data sheet Rev. C
// ("DS"); the same behaviour as the virtual board's Python model (boards/sim/ade7953_model.py).
//
// - SPI frame (DS p.52): address high, address low, command 0x80 read / 0x00 write, then 1..4
//   data bytes MSB first; the width follows address bits 11:8 (0x0xx 8, 0x1xx 16, 0x2xx 24,
//   0x3xx 32 bit), except VERSION 0x702 and EX_REF 0x800 (8 bit). 0x3xx are the 32-bit views
//   of the 0x2xx registers, signed ones sign-extended (DS p.60). Chip select comes in as GPIO
//   input 0 (active low; the firmware drives it as a GPIO), RESET as input 1 (active low).
// - Defaults (DS Tables 14-15): CONFIG 0x8004, LCYCMODE 0x40, AP/VAR_NOLOAD 0x00E419,
//   ZXTOUT 0xFFFF, CF1DEN/CF2DEN 0x3F, CFMODE 0x300, gains 0x400000, IRQENA 0x100000,
//   VERSION 0x04.
// - Register 0x120 takes a write only straight after 0xAD to 0x0FE (DS p.18); CONFIG.SWRST
//   (bit 7) resets the chip.
// - Power-up / reset: ready 40 ms later, then IRQSTATA.RESET (bit 20) is set and the IRQ pin
//   is low while an enabled interrupt is pending, until RSTIRQSTATA is read (DS p.18, p.50).
// - Energy (DS p.25): AENERGYA/RENERGYA/APENERGYA accumulate P, Q and S = sqrt(P^2 + Q^2) at
//   206 900 LSB/s at full scale (Vfs 354 V rms x Ifs 88 A rms with this front end), times
//   xWGAIN/xVARGAIN/xVAGAIN / 0x400000; signed 24 bit, wrapping with AEOFA/VAREOFA/VAEOFA
//   (IRQSTATA bits 3..5); read-with-reset while LCYCMODE.RSTREAD (bit 6) is set. Channel B
//   registers mirror A. The fractional residue is kept, so no energy is lost between reads.
// - No-load (DS p.40-42): a component below Pfs / ((65536 - X_NOLOAD) * 1.4) does not
//   accumulate, unless DISNOLOAD (0x001) bit 0/1/2 disables the check.
// - Instantaneous: VRMS, IRMSA/IRMSB at 9 032 007 LSB full scale (DS p.23), AWATT/AVAR/AVA at
//   4 862 401 LSB (DS p.24), PERIOD = 223 750 / f - 1 (DS p.36), PFA in 2^-15 with the sign of
//   Q (DS p.38).
//
// Properties (monitor: sysbus.spi1.ade7953 ActivePower 2300): ActivePower (W), ReactivePower
// (var), Voltage (V), Frequency (Hz); EnergyReads counts the reads of AENERGYA.
using System;
using System.Collections.Generic;
using Antmicro.Renode.Core;
using Antmicro.Renode.Logging;
using Antmicro.Renode.Peripherals.SPI;

namespace Antmicro.Renode.Peripherals.Sensors
{
    public class ADE7953 : ISPIPeripheral, IGPIOReceiver
    {
        public ADE7953(IMachine machine)
        {
            this.machine = machine;
            IRQ = new GPIO();
            Voltage = 230;
            Frequency = 50;
            Reset();
        }

        public GPIO IRQ { get; }
        public double ActivePower { get; set; }
        public double ReactivePower { get; set; }
        public double Voltage { get; set; }
        public double Frequency { get; set; }
        public ulong EnergyReads { get; private set; }

        public void Reset()
        {
            regs.Clear();
            foreach(var kv in Defaults)
            {
                regs[kv.Key] = kv.Value;
            }
            irqStatus = 0;
            acc = new double[3];
            energy = new long[3];
            readyAtMs = NowMs() + 40;
            lastMs = NowMs();
            lastWasUnlock = false;
            position = 0;
            selected = false;
            UpdateIrq();
        }

        public void OnGPIO(int number, bool value)
        {
            if(number == 0)
            {
                if(!value)
                {
                    selected = true;
                    position = 0;
                }
                else
                {
                    FinishTransmission();
                    selected = false;
                }
            }
            else if(number == 1)
            {
                if(!value)
                {
                    Reset();
                    readyAtMs = double.MaxValue;
                }
                else
                {
                    readyAtMs = NowMs() + 40;
                }
            }
        }

        public byte Transmit(byte data)
        {
            byte result = 0;
            switch(position)
            {
            case 0:
                address = data << 8;
                break;
            case 1:
                address |= data;
                width = Width(address);
                break;
            case 2:
                isRead = (data & 0x80) != 0;
                writeData = 0;
                if(isRead)
                {
                    readValue = ReadRegister(address);
                }
                break;
            default:
                var k = position - 3;
                if(k < width)
                {
                    if(isRead)
                    {
                        result = (byte)(readValue >> (8 * (width - 1 - k)));
                    }
                    else
                    {
                        writeData = (writeData << 8) | data;
                    }
                }
                break;
            }
            position++;
            UpdateIrq();
            return result;
        }

        public void FinishTransmission()
        {
            if(!isRead && width > 0 && position >= 3 + width)
            {
                WriteRegister(address, writeData);
            }
            position = 0;
            width = 0;
            UpdateIrq();
        }

        private static int Width(int addr)
        {
            if(addr == 0x702 || addr == 0x800)
            {
                return 1;
            }
            return ((addr >> 8) & 3) + 1;
        }

        private double NowMs()
        {
            return machine.ElapsedVirtualTime.TimeElapsed.TotalMilliseconds;
        }

        private bool Ready()
        {
            if(readyAtMs != double.MinValue && NowMs() >= readyAtMs)
            {
                readyAtMs = double.MinValue;
                irqStatus |= 1u << 20;
                lastMs = NowMs();
            }
            return readyAtMs == double.MinValue;
        }

        private void UpdateIrq()
        {
            Ready();
            // the pin is active low: low while an enabled interrupt is pending
            IRQ.Set((irqStatus & Reg(0x22C)) == 0);
        }

        private uint Reg(int addr)
        {
            return regs.TryGetValue(addr, out var v) ? v : 0u;
        }

        private double NoLoadWatts(int reg, int disableBit)
        {
            if((Reg(0x001) & disableBit) != 0)
            {
                return 0;
            }
            var denominator = (65536.0 - Reg(reg)) * 1.4;
            return denominator <= 0 ? double.MaxValue : FullScaleWatts / denominator;
        }

        private void Advance()
        {
            var now = NowMs();
            if(!Ready() || now <= lastMs)
            {
                lastMs = Math.Max(now, lastMs);
                return;
            }
            var dt = (now - lastMs) / 1000.0;
            lastMs = now;
            var p = ActivePower;
            var q = ReactivePower;
            var s = Math.Sqrt(p * p + q * q);
            var values = new[] { p, q, s };
            var gains = new[] { Reg(0x282), Reg(0x283), Reg(0x284) };
            var noLoad = new[] { NoLoadWatts(0x203, 1), NoLoadWatts(0x204, 2), NoLoadWatts(0x205, 4) };
            for(var i = 0; i < 3; i++)
            {
                if(Math.Abs(values[i]) < noLoad[i])
                {
                    continue;
                }
                acc[i] += values[i] / FullScaleWatts * EnergyRateFullScale * gains[i] / Unity * dt;
                var whole = (long)Math.Truncate(acc[i]);
                acc[i] -= whole;
                var r = energy[i] + whole;
                if(r > 0x7FFFFF || r < -0x800000)
                {
                    r = ((r + 0x800000) & 0xFFFFFF) - 0x800000;
                    irqStatus |= 1u << (3 + i);
                }
                energy[i] = r;
            }
        }

        private long Instantaneous(int addr)
        {
            var p = ActivePower;
            var q = ReactivePower;
            var s = Math.Sqrt(p * p + q * q);
            var current = Voltage > 0 ? s / Voltage : 0;
            switch(addr)
            {
            case 0x21C:
                return (long)(Voltage / VoltageFullScale * RmsFullScale * Reg(0x281) / Unity);
            case 0x21A:
                return (long)(current / CurrentFullScale * RmsFullScale * Reg(0x280) / Unity);
            case 0x21B:
                return (long)(current / CurrentFullScale * RmsFullScale * Reg(0x28C) / Unity);
            case 0x212:
            case 0x213:
                return (long)(p / FullScaleWatts * PowerFullScale);
            case 0x214:
            case 0x215:
                return (long)(q / FullScaleWatts * PowerFullScale);
            case 0x210:
            case 0x211:
                return (long)(s / FullScaleWatts * PowerFullScale);
            case 0x10A:
            case 0x10B:
                var pf = s == 0 ? 0x7FFF : (long)(Math.Abs(p) * 32767 / s);
                return q < 0 ? -pf : pf;
            case 0x10E:
                return (long)Math.Round(223750.0 / Frequency) - 1;
            default:
                return 0;
            }
        }

        private uint ReadRegister(int addr)
        {
            var n = Width(addr);
            var baseAddr = n == 4 ? addr - 0x100 : addr;
            if(!Ready())
            {
                return 0;
            }
            long v;
            if(baseAddr >= 0x21E && baseAddr <= 0x223)
            {
                Advance();
                var i = baseAddr < 0x220 ? 0 : (baseAddr < 0x222 ? 1 : 2);
                v = energy[i];
                if((baseAddr & 1) == 0)
                {
                    if(i == 0)
                    {
                        EnergyReads++;
                    }
                    if((Reg(0x004) & 0x40) != 0)
                    {
                        energy[i] = 0;
                    }
                }
            }
            else if(baseAddr == 0x22D || baseAddr == 0x22E)
            {
                Advance();
                v = irqStatus;
                if(baseAddr == 0x22E)
                {
                    irqStatus = 0;
                }
            }
            else if(Array.IndexOf(InstantaneousRegisters, baseAddr) >= 0)
            {
                v = Instantaneous(baseAddr);
            }
            else
            {
                v = Reg(baseAddr);
            }
            var bits = 8 * n;
            if(n == 4 && Array.IndexOf(Signed24, baseAddr) >= 0)
            {
                v &= 0xFFFFFF;
                if((v & 0x800000) != 0)
                {
                    v |= 0xFF000000;
                }
            }
            return (uint)(v & (long)((1UL << bits) - 1));
        }

        private void WriteRegister(int addr, uint value)
        {
            var n = Width(addr);
            var baseAddr = n == 4 ? addr - 0x100 : addr;
            var unlock = lastWasUnlock;
            lastWasUnlock = addr == 0x0FE && value == 0xAD;
            if(!Ready() || addr == 0x0FE)
            {
                return;
            }
            if(baseAddr == 0x120)
            {
                if(unlock)
                {
                    regs[0x120] = value & 0xFFFF;
                }
                return;
            }
            if(Array.IndexOf(ReadOnly, baseAddr) >= 0 || (baseAddr >= 0x210 && baseAddr <= 0x223) ||
               (baseAddr >= 0x226 && baseAddr <= 0x22B))
            {
                this.Log(LogLevel.Debug, "write to read-only register 0x{0:X3} ignored", baseAddr);
                return;
            }
            if(baseAddr == 0x102 && (value & 0x80) != 0)
            {
                Reset();
                readyAtMs = NowMs();
                return;
            }
            Advance();  // energy so far accrues at the old settings
            regs[baseAddr] = n == 4 ? value & 0xFFFFFF : value;
        }

        private readonly IMachine machine;
        private readonly Dictionary<int, uint> regs = new Dictionary<int, uint>();
        private uint irqStatus;
        private double[] acc;
        private long[] energy;
        private double readyAtMs;
        private double lastMs;
        private bool lastWasUnlock;
        private bool selected;
        private int position;
        private int address;
        private int width;
        private bool isRead;
        private uint readValue;
        private uint writeData;

        private const double VoltageFullScale = 354.0;     // V rms at 0.5 V peak input
        private const double CurrentFullScale = 88.0;      // A rms at 0.5 V peak input
        private const double FullScaleWatts = VoltageFullScale * CurrentFullScale;
        private const double RmsFullScale = 9032007;        // DS p.23
        private const double PowerFullScale = 4862401;      // DS p.24
        private const double EnergyRateFullScale = 206900;  // LSB/s, DS p.25
        private const double Unity = 0x400000;

        private static readonly int[] InstantaneousRegisters =
            { 0x21A, 0x21B, 0x21C, 0x210, 0x211, 0x212, 0x213, 0x214, 0x215, 0x10A, 0x10B, 0x10E };
        private static readonly int[] Signed24 =
            { 0x210, 0x211, 0x212, 0x213, 0x214, 0x215, 0x216, 0x217, 0x218, 0x21E, 0x21F, 0x220,
              0x221, 0x222, 0x223, 0x286, 0x288, 0x289, 0x28A, 0x28B, 0x292, 0x295, 0x296, 0x297 };
        private static readonly int[] ReadOnly =
            { 0x0FD, 0x0FF, 0x702, 0x10A, 0x10B, 0x10C, 0x10D, 0x10E, 0x1FE, 0x1FF, 0x22D, 0x22E,
              0x230, 0x231, 0x2FF };
        private static readonly Dictionary<int, uint> Defaults = new Dictionary<int, uint>
        {
            { 0x000, 0x00 }, { 0x001, 0x00 }, { 0x004, 0x40 }, { 0x007, 0 }, { 0x008, 0 },
            { 0x009, 0 }, { 0x040, 0 }, { 0x800, 0 }, { 0x702, 0x04 },
            { 0x100, 0xFFFF }, { 0x101, 0 }, { 0x102, 0x8004 }, { 0x103, 0x3F }, { 0x104, 0x3F },
            { 0x107, 0x300 }, { 0x108, 0 }, { 0x109, 0 }, { 0x120, 0 },
            { 0x200, 0 }, { 0x201, 0 }, { 0x203, 0xE419 }, { 0x204, 0xE419 }, { 0x205, 0 },
            { 0x224, 0xFFFFFF }, { 0x225, 0xFFFFFF }, { 0x22C, 0x100000 },
            { 0x280, 0x400000 }, { 0x281, 0x400000 }, { 0x282, 0x400000 }, { 0x283, 0x400000 },
            { 0x284, 0x400000 }, { 0x28C, 0x400000 }, { 0x28D, 0x400000 }, { 0x28E, 0x400000 },
            { 0x28F, 0x400000 }, { 0x290, 0x400000 },
        };
    }
}
