// Virtual clock and helpers for MicroPython on emulated Cortex-M cores (tools/emu).
#ifndef EMU_H
#define EMU_H
#include <stdint.h>

void emu_init(void);
void emu_advance_ms(uint32_t ms);
void emu_wfe(int32_t timeout_ms);
uint32_t emu_seconds(void);
#endif
