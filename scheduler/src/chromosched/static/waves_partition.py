"""Exact waves-model optimum by branch and bound (a min-max partition with block sizes fixed).

Under the waves model an order's peak is its largest block sum: the n tasks fill B = ceil(n/K)
blocks, B-1 of exactly K tasks and a last one of r = n - (B-1)K, and the blocks run one after
another. Which tasks share a block is all that matters, so the optimum is a partition of the
memories into blocks of those sizes that minimises the largest block sum.

The search places the tasks in decreasing memory, each into one block, depth first, and only looks
for partitions strictly better than the incumbent (the annealing's result, or any better one found
on the way). A node is cut when

* a block cannot be completed: its sum plus the smallest memories still to place, as many as it
  has free places, already reaches the incumbent (the remaining tasks are the smallest, so this is
  the least it can end with);
* the remaining memory does not fit into the room left below the incumbent in all blocks;
* the block to try is a copy of one already tried for this task (same size, same count, same sum):
  swapping two such blocks gives the same partition.

Emptier blocks are tried first, which finds good partitions early. When the search ends within
its node limit, the incumbent is proven optimal; otherwise it is only the best found. On the GRCh37
and GRCh38 autosomes it ends for every K in at most about a second (see docs/static.md).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

DEFAULT_NODE_LIMIT = 3_000_000  # a few seconds of pure Python
MAX_TASKS = 400  # deeper inputs are left to the annealing (recursion depth, no hope of a proof)


@dataclass(frozen=True)
class WavesPartition:
    """The best partition found, as an order (blocks in sequence, the short block last)."""

    order: tuple[int, ...] | None  # None when nothing better than the incumbent was found
    peak: int  # largest block sum of the best partition known (the incumbent's when order is None)
    proven: bool  # True: no partition has a smaller peak
    nodes: int
    seconds: float


class _NodeLimit(Exception):
    pass


def block_sizes(n: int, workers: int) -> list[int]:
    """Sizes of the waves model's blocks, in order: B-1 full blocks of K, then the remainder."""
    if n <= 0 or workers < 1:
        return []
    blocks = math.ceil(n / workers)
    return [workers] * (blocks - 1) + [n - (blocks - 1) * workers]


def solve_waves(
    memory: Sequence[int], workers: int, incumbent: int | None = None, node_limit: int = DEFAULT_NODE_LIMIT
) -> WavesPartition:
    """The partition of integer ``memory`` values with the smallest largest block sum.

    ``incumbent`` (a peak some order already reaches) seeds the bound; only strictly better
    partitions are returned as an order. The result is proven optimal when the search finished.
    """
    start = time.perf_counter()
    n = len(memory)
    caps = block_sizes(n, workers)
    if len(caps) <= 1:  # one block (or nothing): every order has the same peak
        return WavesPartition(tuple(range(n)), sum(memory), True, 0, time.perf_counter() - start)
    if n > MAX_TASKS:
        known = incumbent if incumbent is not None else max(sum(memory[b : b + workers]) for b in range(0, n, workers))
        return WavesPartition(None, known, False, 0, time.perf_counter() - start)
    by_size = sorted(range(n), key=lambda i: (-memory[i], i))
    w = [int(memory[i]) for i in by_size]
    suffix = [0] * (n + 1)
    for i in range(n - 1, -1, -1):
        suffix[i] = suffix[i + 1] + w[i]
    B = len(caps)
    sums = [0] * B
    counts = [0] * B
    assign = [0] * n
    best_peak = incumbent if incumbent is not None else sum(w) + 1
    best_assign: list[int] | None = None
    nodes = 0

    def smallest(i: int, c: int) -> int:
        """Sum of the c smallest memories among positions i..n-1 (the last c of them)."""
        return suffix[n - c] if c > 0 else 0

    def dfs(i: int, peak: int) -> None:
        nonlocal best_peak, best_assign, nodes
        nodes += 1
        if nodes > node_limit:
            raise _NodeLimit
        if i == n:
            best_peak, best_assign = peak, assign[:]
            return
        limit = best_peak - 1
        room = 0
        for b in range(B):
            left = caps[b] - counts[b]
            if left:
                if sums[b] + smallest(i, left) > limit:
                    return
                room += limit - sums[b]
        if suffix[i] > room:
            return
        x = w[i]
        tried = set()
        for b in sorted(range(B), key=sums.__getitem__):
            if counts[b] == caps[b]:
                continue
            key = (caps[b], counts[b], sums[b])
            if key in tried:
                continue
            tried.add(key)
            total = sums[b] + x
            if total + smallest(i + 1, caps[b] - counts[b] - 1) > best_peak - 1:
                continue
            sums[b] = total
            counts[b] += 1
            assign[i] = b
            dfs(i + 1, max(peak, total))
            sums[b] -= x
            counts[b] -= 1

    try:
        dfs(0, 0)
        proven = True
    except _NodeLimit:
        proven = False
    order = None
    if best_assign is not None:
        blocks: list[list[int]] = [[] for _ in caps]
        for pos, b in enumerate(best_assign):
            blocks[b].append(by_size[pos])
        order = tuple(task for block in blocks for task in block)
    return WavesPartition(order, best_peak, proven, nodes, time.perf_counter() - start)
