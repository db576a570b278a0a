# Unit tests that cannot run on the emulated MCU cores, each with the reason (frozen into the
# emu firmware; tools/emu/emu_unit.py reports every one by name as "host-only: reason").
# Key: "module.test" or a whole "module". Value: the reason, or ("heap" | "ramdisk",
# smallest size in bytes, reason) for a test that runs where the heap or RAM disk is at least
# that big. A key that matches no test fails the run (stale entry). A test module may also
# define EMU_HOST_ONLY = {"test_x": reason}.
_NOR = "the virtual board's 128 KiB NOR-flash model lives in the heap next to the meter"
_NOR64 = "a 64 KiB NOR-flash model (a test fixture) lives in the heap"
_YEAR = "reads a 570 KB bundled year trace of the virtual board (boards/sim/loads)"
_KB = 1024
HOST_ONLY = {
    "test_iec_session.test_port_task_over_tcp":
        "needs sockets (a TCP client on 127.0.0.1); the QEMU port has no network stack",
    "test_iec_session.test_sim_uart_format_and_tx_timing":
        "needs sockets (boards/sim/uart.py is the virtual board's TCP UART)",
    "test_display.test_control_channel_commands":
        "needs sockets (boards/sim/control.py is the virtual board's TCP control channel)",
    "test_display.test_checksum_is_crc32_of_the_metrology_files":
        "needs the metrology modules' source files; frozen modules have none (the frozen "
        "image's build-time checksum is checked by test_swid_build)",
    "test_package_json.test_package_json_lists_every_device_module":
        "reads the repository's files (package.json, firmware/, lib/, boards/)",
    "test_layout.test_no_import_cycle_in_firmware_or_lib":
        "reads the repository's source files (every import of firmware/ and lib/)",
    "test_layout.test_manifests_cover_every_device_module":
        "reads the repository's manifest.py files and lists firmware/, lib/ and boards/",
    "test_reference.test_readout_and_lcd_identical_to_the_reference": ("heap", 256 * _KB, _NOR),
    "test_storage.test_a_journal_written_by_the_firmware_before_issue_8_restores":
        ("heap", 256 * _KB, _NOR + ", with a 20 KiB flash image from host_tests/fixtures"),
    "test_load.test_bundled_household_pv_year": _YEAR,
    "test_load.test_bundled_household_year": _YEAR,
    "test_load.test_year_trace_heap_footprint": _YEAR,
    "test_protocols.test_password_change_persists": ("heap", 256 * _KB, _NOR),
    "test_protocols.test_readout_list_is_configurable_and_saved": ("heap", 256 * _KB, _NOR),
    "test_iec_fuzz.test_short_fuzz_through_firmware_session": ("heap", 256 * _KB, _NOR),
    "test_iec_fuzz.test_short_fuzz_through_firmware_rs485_session": ("heap", 256 * _KB, _NOR),
    "test_iec_fuzz.test_checks_can_fail": ("heap", 160 * _KB, _NOR),
    "test_protocols.test_display_list_must_keep_the_billing_register": ("heap", 160 * _KB, _NOR),
    "test_protocols.test_metrological_write_needs_open_seal": ("heap", 160 * _KB, _NOR),
    "test_norflash.test_littlefs_mounts_on_the_model": ("heap", 160 * _KB, _NOR64),
    "test_ringlog.test_capacity_from_partition_and_record_size": ("heap", 160 * _KB, _NOR64),
    "test_norflash.test_file_backed_image_and_wear_persist":
        ("ramdisk", 24 * _KB, "an 8 KiB flash image file rewritten in place on littlefs "
         "(copy-on-write) needs about three times its size"),
}

# Real firmware defects that the emulated cores expose and that another work item is fixing:
# "module.test" -> (exception name, where and why). Such a test must still fail with that
# exception (reported as "known defect"); once it passes the run fails until the entry goes,
# so a fix is noticed and the check comes back into force.
KNOWN_DEFECTS = {
    "test_journal.test_power_fail_commit_allocates_nothing": (
        "MemoryError",
        "lib/ringlog.py:442 (also :315): binascii.crc32() values >= 2**30 are long ints on a "
        "32-bit core, so packing the record CRC allocates under heap_lock in the power-fail "
        "commit"),
}
