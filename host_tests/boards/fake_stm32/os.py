from uos import *  # noqa

SYNCS = [0]


def sync():
    SYNCS[0] += 1
