# Unit tests that cannot run on the emulated MCU cores, each with the reason (frozen into the
# emu firmware; tools/emu/emu_unit.py reports every one by name as "host-only: reason").
# Key: "module.test" or a whole "module". Value: the reason, or ("heap" | "ramdisk" |
# "flashmem" | "flash", smallest size in bytes, reason) for a test that runs where the heap,
# the RAM disk, the out-of-heap memory for NOR-flash images (emu.flashmem) or the image's
# flash is at least that big. A key
# that matches no test fails the run (stale entry). A test module may also define
# EMU_HOST_ONLY = {"test_x": reason}.
_NOR = ("the virtual board's 1 MiB NOR-flash image (a flash chip on a device) has no room "
        "outside the heap: the core has 128 KiB of SRAM in all")
_NOR64 = ("a 64 KiB NOR-flash image (a test fixture) has no room outside the heap: the core has "
          "128 KiB of SRAM in all")
_NOR32 = ("a 32 KiB NOR-flash image (a test fixture) has no room outside the heap: the core has "
          "128 KiB of SRAM in all")
_YEAR = "reads a 570 KB bundled year trace of the virtual board (boards/sim/loads)"
_KB = 1024
_TCP = "needs sockets (%s); the QEMU port has no network stack"
HOST_ONLY = {
    "test_load.test_the_trace_is_read_in_blocks_not_byte_by_byte":
        ("ramdisk", 512 * _KB, "writes a trace file bigger than a 16 KiB RAM disk"),
    "test_sim_control": _TCP % "real TCP clients of boards/sim/control.py on 127.0.0.1",
    "test_sim_stop.test_the_control_channels_stop_command":
        _TCP % "boards/sim/control.py listens on 127.0.0.1",
    "test_alloc.test_virtual_board_metering_read_allocates_nothing":
        "the virtual board's ADE7953 model (the simulator, on the 64-bit unix port) keeps "
        "exact energy residues (products up to ~2^50): long ints on a 32-bit core",
    "test_iec_session.test_port_task_ends_rights_when_the_tcp_client_changes":
        _TCP % "two TCP clients in turn on the virtual board's optical-port UART",
    "test_iec_session.test_bus_uart_reconnection_is_a_new_link":
        _TCP % "a TCP bus server that the virtual board's RS-485 UART connects to",
    "test_iec_session.test_sim_uart_holds_little_for_a_peer_that_does_not_read":
        _TCP % "a TCP peer of the virtual board's UART that never reads",
    "test_load.test_a_line_without_end_is_refused_not_read_whole":
        ("ramdisk", 512 * _KB, "writes 300 KB trace files (lines longer than the heap)"),
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
    "test_preload":
        "reads the repository's source files (the module-level imports of firmware/ and lib/) "
        "and imports firmware/preload.py, which is frozen only with main (not in the unit-test "
        "image); tools/emu/deploy_test.py runs preload.load on the emulated core over the "
        "deployed .mpy files",
    "test_layout.test_manifests_cover_every_device_module":
        "reads the repository's manifest.py files and lists firmware/, lib/ and boards/",
    "test_reference.test_readout_and_lcd_identical_to_the_reference":
        "reads host_tests/unit/reference_before_issue8.json (a repository file; the image "
        "holds frozen modules only)",
    "test_storage.test_a_journal_written_by_the_firmware_before_issue_8_restores":
        "reads host_tests/fixtures/journal_schema1.* (repository files; the image holds "
        "frozen modules only)",
    "test_billing_wiring.test_state_and_snapshots_persist_in_the_billing_partition":
        ("flashmem", 32 * _KB, "a 32 KiB NOR-flash image (the billing partition) has no room "
         "outside the heap: the core has 128 KiB of SRAM in all"),
    "test_billing_wiring.test_a_new_demand_configuration_keeps_the_maxima_and_takes_the_new_lockout":
        ("flashmem", 32 * _KB, "a 32 KiB NOR-flash image (the billing partition) has no room "
         "outside the heap: the core has 128 KiB of SRAM in all"),
    "test_billing_wiring.test_a_billing_end_in_the_skipped_spring_hour_is_not_taken_before_its_time_at_boot":
        ("flashmem", 32 * _KB, "a 32 KiB NOR-flash image (the billing partition) has no room "
         "outside the heap: the core has 128 KiB of SRAM in all"),
    "test_billing_wiring.test_an_rtc_restarted_at_2000_does_not_stop_the_meter":
        ("flashmem", 32 * _KB, "a 32 KiB NOR-flash image (the billing partition) has no room "
         "outside the heap: the core has 128 KiB of SRAM in all"),
    "test_billing_wiring.test_a_clock_behind_the_last_close_never_closes_a_period_stamped_before_it":
        ("flashmem", 32 * _KB, "a 32 KiB NOR-flash image (the billing partition) has no room "
         "outside the heap: the core has 128 KiB of SRAM in all"),
    "test_billing_warning.test_a_demand_reset_during_a_power_fail_warning_erases_nothing":
        ("flashmem", 32 * _KB, "a 32 KiB NOR-flash image (the billing partition) has no room "
         "outside the heap: the core has 128 KiB of SRAM in all"),
    "test_billing_warning.test_the_erase_ahead_held_back_by_a_warning_wakes_the_billing_task_when_it_ends":
        ("flashmem", 32 * _KB, "a 32 KiB NOR-flash image (the billing partition) has no room "
         "outside the heap: the core has 128 KiB of SRAM in all"),
    "test_pulse.test_led_task_shows_every_pulse":
        ("heap", 128 * _KB, "the whole meter with the billing functions (issue 10) plus the "
         "virtual board's ADE7953 model and trace run out of a 96 KiB heap (MemoryError in "
         "the model, so no pulse)"),
    "test_load.test_bundled_household_pv_year": _YEAR,
    "test_load.test_bundled_household_year": _YEAR,
    "test_load.test_year_trace_heap_footprint": _YEAR,
    "test_iec_fuzz.test_short_fuzz_through_firmware_session": ("flashmem", 1024 * _KB, _NOR),
    "test_iec_fuzz.test_short_fuzz_through_firmware_rs485_session": ("flashmem", 1024 * _KB, _NOR),
    "test_iec_fuzz.test_checks_can_fail": ("flashmem", 1024 * _KB, _NOR),
    # every test below builds a meter on the virtual board (its 1 MiB NOR image)
    "test_readback.test_storage_flags_a_write_that_did_not_take_and_keeps_metering":
        ("flashmem", 1024 * _KB, _NOR),
    "test_readback.test_an_intermittent_chip_logs_one_readback_episode_not_a_flood":
        ("flashmem", 1024 * _KB, _NOR),
    "test_storage": ("flashmem", 1024 * _KB, _NOR),
    "test_sim_stop": ("flashmem", 1024 * _KB, _NOR),
    "test_clock_limit.test_a_budget_not_rebuilt_is_not_taken_for_a_fresh_one":
        ("flashmem", 1024 * _KB, _NOR),
    "test_audit": ("flashmem", 1024 * _KB, _NOR),
    "test_logbook": ("flashmem", 1024 * _KB, _NOR),
    # load profiles on NOR images of 24..96 KiB (two at once in the power-cut campaign)
    "test_load_profile": ("flashmem", 1024 * _KB, "NOR-flash images of the load profile "
                          "(up to 96 KiB, two at once while cutting) have no room outside "
                          "the heap: the core has 128 KiB of SRAM in all"),
    "test_tamper": ("flashmem", 1024 * _KB, _NOR),
    # cut campaigns: a base NOR image and its copy per cut (32 KiB each)
    "test_billing_cuts": ("flashmem", 64 * _KB, _NOR64),
    "test_protocols.test_a_flood_of_refusals_cannot_wipe_the_logs":
        ("flashmem", 1024 * _KB, _NOR),
    "test_protocols.test_a_master_logging_in_on_rs485_does_not_reset_an_optical_guesser":
        ("flashmem", 1024 * _KB, _NOR),
    "test_protocols.test_acknowledging_a_fallback_writes_both_copies":
        ("flashmem", 1024 * _KB, _NOR),
    "test_protocols.test_an_acknowledged_password_or_meter_constant_survives_a_power_cut":
        ("flashmem", 1024 * _KB, _NOR),
    "test_protocols.test_blank_configuration_after_use_is_a_fallback":
        ("heap", 256 * _KB, "three boots, the last on a fresh board while the second's is "
         "kept: passes in the full MPS2 run but not in a run of test_protocols alone "
         "(MemoryError: at the edge of a 192 KiB heap)"),
    "test_protocols.test_boot_reads_a_full_security_log_record_by_record":
        ("flashmem", 1024 * _KB, _NOR),
    "test_protocols.test_both_copies_damaged_keep_programming_closed_and_strict":
        ("flashmem", 1024 * _KB, _NOR),
    "test_protocols.test_damaged_newest_config_copy_never_brings_back_the_factory_password":
        ("flashmem", 1024 * _KB, _NOR),
    "test_protocols.test_display_list_must_keep_the_billing_register":
        ("flashmem", 1024 * _KB, _NOR),
    "test_protocols.test_fallback_flags_survive_a_save_and_a_restart":
        ("flashmem", 1024 * _KB, _NOR),
    "test_protocols.test_flood_summaries_are_written_at_the_power_fail_warning":
        ("flashmem", 1024 * _KB, _NOR),
    "test_protocols.test_metrological_write_needs_open_seal":
        ("flashmem", 1024 * _KB, _NOR),
    "test_protocols.test_old_event_partition_is_read_not_misread":
        ("flashmem", 1024 * _KB, _NOR),
    "test_protocols.test_older_own_password_still_works_but_is_flagged":
        ("flashmem", 1024 * _KB, _NOR),
    "test_protocols.test_one_lockout_per_meter_that_survives_a_restart":
        ("flashmem", 1024 * _KB, _NOR),
    "test_protocols.test_password_change_persists":
        ("flashmem", 1024 * _KB, _NOR),
    "test_protocols.test_power_cycles_with_floods_cannot_flush_a_lockout_out_of_the_log":
        ("heap", 256 * _KB, "160 boots in one process: with one meter at a time the garbage of "
         "the boots fragments a 192 KiB heap until a session's 320-byte buffer finds no room "
         "(MemoryError in the full MPS2 run; a device boots once)"),
    "test_protocols.test_readout_list_is_configurable_and_saved":
        ("flashmem", 1024 * _KB, _NOR),
    "test_protocols.test_refusals_are_persisted_with_address_and_port":
        ("flashmem", 1024 * _KB, _NOR),
    "test_protocols.test_w1_flood_is_coalesced_within_the_wear_budget":
        ("flashmem", 1024 * _KB, _NOR),
    "test_billing_profile.test_512k_ring_log_keeps_366_days_of_worst_case_rows":
        ("flashmem", 512 * _KB, "a 512 KiB NOR-flash image (the load-profile ring under test)"),
    "test_journal.test_salvage_on_16_byte_program_rows_is_cheap":
        ("flashmem", 48 * _KB, "a 48 KiB NOR-flash image (three 16 KiB STM32F4 sectors) next "
         "to the test in a 96 KiB heap"),
    "test_modem_fuzz.test_manager_fuzz_short_recovers":
        ("heap", 128 * _KB, "the SIM800 model's TCP and UART buffers, re-sliced at every "
         "read, churn a 96 KiB heap until no 3 KiB block is left (its live peak is ~16 KiB)"),
    "test_norflash.test_littlefs_mounts_on_the_model": ("flashmem", 64 * _KB, _NOR64),
    "test_ringlog.test_capacity_from_partition_and_record_size": ("flashmem", 64 * _KB, _NOR64),
    # the uplink outbox's 512-byte records: 8 sectors of 4 KiB (room for what is owed)
    "test_uplink_outbox.test_power_cut_at_every_flash_op_loses_nothing_and_duplicates_keep_their_seq":
        ("flashmem", 32 * _KB, _NOR32),
    "test_uplink_task": ("flashmem", 32 * _KB, _NOR32),
    "test_uplink_alloc": ("flashmem", 32 * _KB, _NOR32),
    "test_uplink_outbox.test_power_cut_at_every_flash_op_of_a_wrapping_outbox_keeps_its_accounts":
        ("flashmem", 16 * _KB, "a 16 KiB NOR-flash image per power cut (a test fixture) has "
         "no room outside the heap: a new one for each of ~200 cuts fragments a 96 KiB heap"),
    "test_uplink_config": _TCP % "the uplink's SIM800 model bridges to real TCP: the virtual "
                          "board builds no modem and no uplink without sockets",
    "test_norflash.test_file_backed_image_and_wear_persist":
        ("ramdisk", 24 * _KB, "an 8 KiB flash image file rewritten in place on littlefs "
         "(copy-on-write) needs about three times its size"),
}

# Real firmware defects that the emulated cores expose and that another work item is fixing:
# "module.test" -> (exception name, where and why). Such a test must still fail with that
# exception (reported as "known defect"); once it passes the run fails until the entry goes,
# so a fix is noticed and the check comes back into force.
KNOWN_DEFECTS = {
}
