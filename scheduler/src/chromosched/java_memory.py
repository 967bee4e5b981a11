"""A Java job's memory: the ``-Xmx`` heap for a ``mem_mb`` grant, and back.

One definition shared by the scheduler (which turns a heap prediction from a RAM prior into the
``mem_mb`` it packs and stores) and the pipeline's Beagle wrapper (which turns the job's
``mem_mb`` into ``-Xmx``), so both sides agree on the number.
"""

from __future__ import annotations

import math

# Memory the JVM needs beyond -Xmx (metaspace, code cache, GC structures, thread stacks): measured
# ~60-100 MB for Beagle 5.4 on OpenJDK 17 at small heaps; GC bookkeeping grows with the heap.
JVM_OVERHEAD_MB = 100
JVM_OVERHEAD_FRACTION = 0.05
# Smallest heap ever passed: enough for the JVM to start (OpenJDK 17 refuses -Xmx2m). Beagle itself
# needs more, so a grant this small fails fast with a heap OOM and the retry gets more.
HEAP_FLOOR_MB = 4


def heap_mb_for(mem_mb: int | float) -> int:
    """The ``-Xmx`` (MB) for a job granted ``mem_mb``: ``mem_mb - 100 - 5% of mem_mb``, at least 4.

    Example: 1024 -> 872, 4096 -> 3791, 200 -> 90, 100 -> 4 (the floor).
    """
    mem = float(mem_mb)
    return max(HEAP_FLOOR_MB, int(mem - JVM_OVERHEAD_MB - JVM_OVERHEAD_FRACTION * mem))


def mem_mb_for_heap(heap_mb: int | float) -> int:
    """Inverse of :func:`heap_mb_for`: the smallest ``mem_mb`` whose heap is at least ``heap_mb``.

    ``heap_mb_for`` passes whole MB, so a fractional prediction (a calibrated 36.17 MB) is first
    rounded up: the job then gets ``-Xmx37m``, never the 36 MB that the naive inverse gave back.
    """
    whole = math.ceil(float(heap_mb))
    mem = int(-(-(whole + JVM_OVERHEAD_MB) // (1 - JVM_OVERHEAD_FRACTION)))
    while heap_mb_for(mem) < whole:  # float rounding either way in 0.95 x mem
        mem += 1
    if whole > HEAP_FLOOR_MB and heap_mb_for(mem - 1) >= whole:
        mem -= 1
    return mem
