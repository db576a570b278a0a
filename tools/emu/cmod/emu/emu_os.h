// MICROPY_PY_OS_INCLUDEFILE: os.urandom for the emulated targets. The emulated boards have
// no entropy source: this is a xorshift32 sequence (same on every boot), good enough for the
// unique file names tests make, and never for keys.
#include "py/runtime.h"

static uint32_t emu_rng_state = 2463534242u;

static mp_obj_t mp_os_urandom(mp_obj_t num) {
    mp_int_t n = mp_obj_get_int(num);
    vstr_t vstr;
    vstr_init_len(&vstr, n);
    for (mp_int_t i = 0; i < n; i++) {
        uint32_t x = emu_rng_state;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        emu_rng_state = x;
        vstr.buf[i] = (char)(x >> 24);
    }
    return mp_obj_new_bytes_from_vstr(&vstr);
}
static MP_DEFINE_CONST_FUN_OBJ_1(mp_os_urandom_obj, mp_os_urandom);
