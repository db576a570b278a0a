# User C module for the emulated targets (tools/emu): virtual clock, RAM disk, build facts.
EMU_MOD_DIR := $(USERMOD_DIR)
SRC_USERMOD_C += $(EMU_MOD_DIR)/emu.c
SRC_USERMOD_LIB_C += shared/timeutils/timeutils.c
CFLAGS_USERMOD += -I$(EMU_MOD_DIR)
