// MICROPY_PY_TIME_INCLUDEFILE: time.time(), time.localtime() on the virtual clock.
// Seconds count from 2000-01-01 (the bare-metal epoch), starting at EMU_EPOCH_START.
#include "py/obj.h"
#include "shared/timeutils/timeutils.h"
#include "emu.h"

static mp_obj_t mp_time_time_get(void) {
    return mp_obj_new_int_from_uint(emu_seconds());
}

static mp_obj_t mp_time_localtime_get(void) {
    timeutils_struct_time_t tm;
    timeutils_seconds_since_epoch_to_struct_time(emu_seconds(), &tm);
    mp_obj_t t[8] = {
        mp_obj_new_int(tm.tm_year), mp_obj_new_int(tm.tm_mon), mp_obj_new_int(tm.tm_mday),
        mp_obj_new_int(tm.tm_hour), mp_obj_new_int(tm.tm_min), mp_obj_new_int(tm.tm_sec),
        mp_obj_new_int(tm.tm_wday), mp_obj_new_int(tm.tm_yday),
    };
    return mp_obj_new_tuple(8, t);
}
