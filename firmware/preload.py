# Boot: the application's modules imported leaves first, with a collection after each.
"""On a device, ``main`` calls :func:`load` before it builds the board: each module the
application imports at module level is imported alone, leaves first, with a garbage
collection after it.

Why: a module loaded from a .mpy file (``make deploy``, tools/deploy.py) keeps its bytecode
in the heap, and its load leaves garbage (the file object, its buffers, growing dicts). With
``import app`` alone the garbage of dozens of loads was collected only when the heap ran full,
and the next modules' bytecode filled the holes it left: MPS2_AN385's 192 KiB heap ended with
50 KB free in pieces of at most 2 KB, and 4 KB allocated before the import made it fail
(MemoryError) with 48 KB free. Loaded in this order the same heap keeps its free memory in one
block of 19.9-24 KB (docs/BENCHMARKS.md "Deploy: the boot's import order";
tools/emu/deploy_test.py). With the application frozen into the firmware (the real
deployment) the bytecode is in flash and the collections only cost a few milliseconds.

``ORDER`` is derived from the sources (host_tests/unit/test_preload.py checks it and prints the
new tuple when an import changes): the module-level imports reachable from ``app`` and the
metering task that ``app.run`` always starts. Modules imported lazily (the uplink, the IEC
ports, rare settings) load when first used.
"""

ORDER = (
    "events", "ade7953", "billing", "billing.demand", "civil", "billing.localtime",
    "billing.period", "billing.easter", "billing.tou", "billing.config", "energy",
    "energy.pulse", "meter", "flashstore", "flashstore.ringlog", "meter.audit",
    "flashstore.flash", "billing.tariff", "meter.tariffs", "meter.billing", "meter.defaults",
    "meter.swid", "meter.testmode", "meter.catalogue", "meter.demand", "ticks",
    "meter.metering", "billing.profile", "meter.profile", "meter.status", "meter.settings",
    "meter.supply", "meter.testoutput", "tasks", "tasks.wake", "tasks.billing", "tasks.leds",
    "tasks.profile", "tasks.storage", "lcd", "tasks.display", "tasks.supervisor",
    "tasks.tamper", "app", "tasks.metering",
)


def load(order=ORDER, collect=None):
    """Import every module named in ``order`` (dotted names), in order, calling ``collect``
    (default ``gc.collect``) after each. Raises what an import raises (ImportError,
    MemoryError)."""
    if collect is None:
        import gc

        collect = gc.collect
    for name in order:
        __import__(name)
        collect()
