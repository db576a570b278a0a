// Virtual clock, RAM disk, flash memory and build facts for MicroPython on emulated Cortex-M3 cores
// (QEMU mps2-an385 and netduino2; tools/emu).
//
// Virtual clock: milliseconds advance by (a) SysTick, one tick per EMU_CPU_HZ/1000 cycles of
// executed code, and (b) every wait: time.sleep*, and the idle wait inside select.poll that
// asyncio uses (MICROPY_INTERNAL_WFE) jump the clock by the whole timeout at once. So asyncio
// programs run as fast as the emulator executes them and, under `qemu -icount`, repeatably,
// while a busy loop on ticks_ms still ends.
//
// time.ticks_cpu() counts executed SysTick cycles only (waits add none): the instruction
// count of a code path under `-icount shift=N` is cycles * 1e9 / (EMU_CPU_HZ << N).
//
// Flash memory: the virtual board's NOR-flash model (boards/sim/norflash.py) keeps its image
// in a bytearray. On a device that image is the flash chip, not RAM, so here it comes from a
// arena outside the GC heap (EMU_FLASHMEM_KB, first fit in 1 KiB pages; a static array, or the
// RAM at EMU_FLASHMEM_ADDR where the machine has a region the image does not use): the heap the
// tests run in stays the device-sized one. A block is freed when its owner object is
// collected (finaliser); an allocation that finds no room collects garbage and tries again.
//
// All arithmetic is 32-bit: a 64-bit division would pull libgcc's unwinder tables into the
// image (the port's linker script has no .ARM.exidx section).
#include <stdlib.h>
#include <string.h>
#include "py/runtime.h"
#include "py/mphal.h"
#include "py/gc.h"
#include "emu.h"

#ifndef EMU_CPU_HZ
#error "EMU_CPU_HZ: the emulated core clock (SysTick, CLKSOURCE=processor)"
#endif
#ifndef EMU_RAMDISK_KB
#define EMU_RAMDISK_KB (0)
#endif
#ifndef EMU_FLASHMEM_KB
#define EMU_FLASHMEM_KB (0)
#endif
#ifndef EMU_EPOCH_START
#define EMU_EPOCH_START (820454400u)  // 2026-01-01 00:00:00 UTC in seconds since 2000
#endif

#define CYC_PER_MS ((uint32_t)(EMU_CPU_HZ / 1000))

// ARMv7-M system registers (ARMv7-M ARM B3.2.2, B3.3.2).
#define SYST_CSR (*(volatile uint32_t *)0xE000E010)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018)
#define SCB_VTOR (*(volatile uint32_t *)0xE000ED08)

static volatile uint32_t vc_sec;     // seconds since EMU_EPOCH_START
static volatile uint32_t vc_msec;    // 0..999
static volatile uint32_t vc_ms;      // ticks_ms (wraps)
static volatile uint32_t vc_cycles;  // executed cycles up to the last SysTick
static uint32_t vc_frac_us;          // delay_us remainder, < 1000
static uint32_t ram_vectors[32] __attribute__((aligned(128)));
static int emu_ready;

#if EMU_RAMDISK_KB > 0
static uint8_t ramdisk[EMU_RAMDISK_KB * 1024] __attribute__((aligned(4)));
#endif

#if EMU_FLASHMEM_KB > 0
#define FM_PAGE (1024)
#define FM_PAGES (EMU_FLASHMEM_KB)
#ifdef EMU_FLASHMEM_ADDR
// a RAM region of the machine the firmware image does not use (e.g. the MPS2's 16 MB PSRAM)
#define flashmem ((uint8_t *)(EMU_FLASHMEM_ADDR))
#else
static uint8_t flashmem[FM_PAGES * FM_PAGE] __attribute__((aligned(4)));
#endif
static uint8_t fm_used[FM_PAGES];  // 1: page belongs to a live block
#endif

static void advance_locked(uint32_t ms) {
    vc_ms += ms;
    uint32_t m = vc_msec + ms;
    if (m >= 1000) {
        vc_sec += m / 1000;
        m %= 1000;
    }
    vc_msec = m;
}

static void emu_systick(void) {
    vc_cycles += CYC_PER_MS;
    advance_locked(1);
}

void emu_init(void) {
    if (emu_ready) {
        return;
    }
    emu_ready = 1;
    // Copy the vector table to RAM and point SysTick at the virtual clock.
    const uint32_t *vt = (const uint32_t *)SCB_VTOR;
    for (int i = 0; i < 16; i++) {
        ram_vectors[i] = vt[i];
    }
    ram_vectors[15] = (uint32_t)&emu_systick;
    SCB_VTOR = (uint32_t)ram_vectors;
    SYST_RVR = CYC_PER_MS - 1;
    SYST_CVR = 0;
    SYST_CSR = 7;  // ENABLE | TICKINT | CLKSOURCE=processor clock
    __asm volatile ("cpsie i" ::: "memory");
}

void emu_advance_ms(uint32_t ms) {
    __asm volatile ("cpsid i" ::: "memory");
    advance_locked(ms);
    __asm volatile ("cpsie i" ::: "memory");
}

void emu_wfe(int32_t timeout_ms) {
    // Nothing can wake the core early (no interrupt-driven I/O): the wait is the timeout.
    emu_advance_ms(timeout_ms < 0 ? 1 : (uint32_t)timeout_ms);
}

uint32_t emu_seconds(void) {
    return EMU_EPOCH_START + vc_sec;
}

// Consistent (ms, cycles into the current ms) pair.
static void now(uint32_t *ms, uint32_t *cyc) {
    uint32_t a, c;
    do {
        a = vc_ms;
        c = SYST_CVR;
    } while (a != vc_ms);
    *ms = a;
    *cyc = (CYC_PER_MS - 1) - (c < CYC_PER_MS ? c : CYC_PER_MS - 1);
}

mp_uint_t mp_hal_ticks_ms(void) {
    return vc_ms;
}

mp_uint_t mp_hal_ticks_us(void) {
    uint32_t ms, cyc;
    now(&ms, &cyc);
    return ms * 1000 + vc_frac_us + cyc / (CYC_PER_MS / 1000);
}

mp_uint_t mp_hal_ticks_cpu(void) {
    uint32_t a, c, cyc;
    do {
        a = vc_cycles;
        c = SYST_CVR;
    } while (a != vc_cycles);
    cyc = (CYC_PER_MS - 1) - (c < CYC_PER_MS ? c : CYC_PER_MS - 1);
    return a + cyc;
}

void mp_hal_delay_ms(mp_uint_t ms) {
    mp_handle_pending(true);
    emu_advance_ms(ms);
}

void mp_hal_delay_us(mp_uint_t us) {
    uint32_t t = vc_frac_us + us;
    vc_frac_us = t % 1000;
    emu_advance_ms(t / 1000);
}

uint64_t mp_hal_time_ns(void) {
    return (uint64_t)emu_seconds() * 1000000000ull + (uint64_t)vc_msec * 1000000ull;
}

// -- module emu ---------------------------------------------------------------------------

#if EMU_FLASHMEM_KB > 0
// Owner of a flash-memory block; its finaliser (__del__) gives the pages back.
typedef struct {
    mp_obj_base_t base;
    uint32_t first;
    uint32_t count;  // 0 once freed
} emu_flashblock_t;

static mp_obj_t emu_flashblock_del(mp_obj_t self_in) {
    emu_flashblock_t *b = MP_OBJ_TO_PTR(self_in);
    if (b->count) {
        memset(fm_used + b->first, 0, b->count);
        b->count = 0;
    }
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_1(emu_flashblock_del_obj, emu_flashblock_del);

static const mp_rom_map_elem_t emu_flashblock_locals_table[] = {
    { MP_ROM_QSTR(MP_QSTR___del__), MP_ROM_PTR(&emu_flashblock_del_obj) },
};
static MP_DEFINE_CONST_DICT(emu_flashblock_locals, emu_flashblock_locals_table);

static MP_DEFINE_CONST_OBJ_TYPE(
    emu_flashblock_type,
    MP_QSTR_FlashBlock,
    MP_TYPE_FLAG_NONE,
    locals_dict, &emu_flashblock_locals
    );

// First run of `count` free pages, or -1.
static int fm_find(uint32_t count) {
    uint32_t run = 0;
    for (uint32_t i = 0; i < FM_PAGES; i++) {
        run = fm_used[i] ? 0 : run + 1;
        if (run == count) {
            return (int)(i + 1 - count);
        }
    }
    return -1;
}
#endif

// emu.flashmem(n) -> (bytearray of n bytes outside the GC heap, owner) or None when the
// arena has no room even after a collection (or none was built). The memory is the owner's:
// keep the owner as long as the bytearray is used.
static mp_obj_t emu_flashmem(mp_obj_t n_in) {
    #if EMU_FLASHMEM_KB > 0
    mp_int_t n = mp_obj_get_int(n_in);
    if (n <= 0 || n > FM_PAGES * FM_PAGE) {
        return mp_const_none;
    }
    uint32_t count = ((uint32_t)n + FM_PAGE - 1) / FM_PAGE;
    emu_flashblock_t *b = mp_obj_malloc_with_finaliser(emu_flashblock_t, &emu_flashblock_type);
    b->count = 0;
    int first = fm_find(count);
    if (first < 0) {
        gc_collect();  // run the finalisers of blocks nobody holds any more
        first = fm_find(count);
        if (first < 0) {
            return mp_const_none;
        }
    }
    memset(fm_used + first, 1, count);
    b->first = (uint32_t)first;
    b->count = count;
    mp_obj_t t[2] = {
        mp_obj_new_bytearray_by_ref((size_t)n, flashmem + (uint32_t)first * FM_PAGE),
        MP_OBJ_FROM_PTR(b),
    };
    return mp_obj_new_tuple(2, t);
    #else
    (void)n_in;
    return mp_const_none;
    #endif
}
static MP_DEFINE_CONST_FUN_OBJ_1(emu_flashmem_obj, emu_flashmem);

// emu.ramdisk() -> bytearray over a static buffer outside the GC heap (None if none built).
static mp_obj_t emu_ramdisk(void) {
    #if EMU_RAMDISK_KB > 0
    return mp_obj_new_bytearray_by_ref(sizeof(ramdisk), ramdisk);
    #else
    return mp_const_none;
    #endif
}
static MP_DEFINE_CONST_FUN_OBJ_0(emu_ramdisk_obj, emu_ramdisk);

// emu.mem() -> (data_bytes, bss_bytes, ramdisk_bytes, stack_top, heap_bytes)
extern uint32_t _sdata, _edata, _sbss, _ebss, _estack;
static mp_obj_t emu_mem(void) {
    gc_info_t info;
    gc_info(&info);
    mp_obj_t t[5] = {
        mp_obj_new_int((char *)&_edata - (char *)&_sdata),
        mp_obj_new_int((char *)&_ebss - (char *)&_sbss),
        mp_obj_new_int(EMU_RAMDISK_KB * 1024),
        mp_obj_new_int_from_uint((uint32_t)&_estack),
        mp_obj_new_int(info.total),
    };
    return mp_obj_new_tuple(5, t);
}
static MP_DEFINE_CONST_FUN_OBJ_0(emu_mem_obj, emu_mem);

// emu.exit(code): end the emulator (ARM semihosting SYS_EXIT) with this status.
static mp_obj_t emu_exit(mp_obj_t code) {
    exit(mp_obj_get_int(code));
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_1(emu_exit_obj, emu_exit);

// emu.advance_ms(ms): move the virtual clock on (a test hook; waits do this themselves).
static mp_obj_t emu_advance(mp_obj_t ms) {
    emu_advance_ms(mp_obj_get_int(ms));
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_1(emu_advance_obj, emu_advance);

static const mp_rom_map_elem_t emu_globals_table[] = {
    { MP_ROM_QSTR(MP_QSTR___name__), MP_ROM_QSTR(MP_QSTR_emu) },
    { MP_ROM_QSTR(MP_QSTR_cpu_hz), MP_ROM_INT(EMU_CPU_HZ) },
    { MP_ROM_QSTR(MP_QSTR_ramdisk), MP_ROM_PTR(&emu_ramdisk_obj) },
    { MP_ROM_QSTR(MP_QSTR_flashmem), MP_ROM_PTR(&emu_flashmem_obj) },
    { MP_ROM_QSTR(MP_QSTR_flashmem_size), MP_ROM_INT(EMU_FLASHMEM_KB * 1024) },
    { MP_ROM_QSTR(MP_QSTR_mem), MP_ROM_PTR(&emu_mem_obj) },
    { MP_ROM_QSTR(MP_QSTR_exit), MP_ROM_PTR(&emu_exit_obj) },
    { MP_ROM_QSTR(MP_QSTR_advance_ms), MP_ROM_PTR(&emu_advance_obj) },
};
static MP_DEFINE_CONST_DICT(emu_globals, emu_globals_table);

const mp_obj_module_t emu_module = {
    .base = { &mp_type_module },
    .globals = (mp_obj_dict_t *)&emu_globals,
};
MP_REGISTER_MODULE(MP_QSTR_emu, emu_module);
