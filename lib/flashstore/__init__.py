"""Power-cut-safe storage on raw NOR flash: ``flash`` (the flash interface, partitions, a
block-device adapter), ``ringlog`` (the sector ring engine and RingLog), ``journal`` (the
register journal and its commit policy) and ``config`` (the two-copy configuration record
and its write budget)."""
