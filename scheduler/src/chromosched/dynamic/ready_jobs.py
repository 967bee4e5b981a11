"""The ready jobs of a run as arrays, kept across scheduling rounds, and the vectorised selection.

Snakemake asks the scheduler to choose from its ready jobs on every job finish and about once a
second while jobs wait; with 10,000 ready jobs a per-job Python pass per call (records, feature
dicts, predictions, sort keys, pack items) costs far more than the knapsack. So each ready job's
per-job work is done once, when it becomes ready, and held in a row of numpy arrays:

- its :class:`~chromosched.runtime.job_record.JobRecord` and :class:`~chromosched.dynamic.policy.TaskRequest`,
- its size features (one column per candidate feature of the policy), cap, minimum and prior runtime,
- its cores and any other numeric resource it declares (one column per resource name),
- a tie-break key that sorts like its uid (an order-maintenance key: no sort of strings per call),
- its critical-path rank (see :mod:`chromosched.dynamic.critical_path`), when one is known.

Rows are freed when a job starts or leaves the ready set and reused, so memory stays flat over a
long run. A round then costs one vectorised prediction per job type (a polynomial over a column:
the model may change between any two rounds, so nothing stale is reused) and one knapsack over arrays.

:func:`select_vectorised` is :meth:`DynamicPolicy.select` for job types that are past their first
phase, over these arrays (same allocations, same preference order, same packer); it returns None
where the policy's own per-job path must decide (a job type still in its first phase, the pooled
reserve mode, a feature some job lacks, a rule still to be probed). ``tests/test_ready_jobs.py``
checks that both agree.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

import numpy as np

from ..errors import ChromoschedError
from ..runtime.job_record import JobRecord
from .head_reservation import HeadPlan, plan_head
from .packers import UNLIMITED, FirstFitPacker, GreedyPacker, KnapsackPacker, Limits, _Arrays, _check_limits
from .policy import Allocation, Capacity, DynamicPolicy, RunningTask, TaskRequest


class ReadyJobs:
    """Ready jobs by uid, each with a row in column arrays (see the module docstring)."""

    def __init__(
        self,
        features: Sequence[str] = (),
        task_of: Callable[[JobRecord], TaskRequest] | None = None,
        x_of: Callable[[TaskRequest, str], float | None] | None = None,
        unmanaged_of: Callable[[JobRecord], bool] = lambda record: False,
    ):
        self.features = tuple(features)
        self._task_of = task_of
        self._x_of = x_of
        self._unmanaged_of = unmanaged_of
        self.slot_of: dict[str, int] = {}
        self.records: list[JobRecord | None] = []
        self.tasks: list[TaskRequest | None] = _Requests(self)
        self._free: list[int] = []
        self._n = 0  # rows allocated
        self.kind_id: dict[str, int] = {}
        self.kinds: list[str] = []
        self._cols: dict[str, np.ndarray] = {}
        self._res: dict[str, np.ndarray] = {}  # other numeric resources by name
        self.active = np.zeros(0, dtype=bool)
        # Tie-break keys that sort like the uids: a sorted uid list and a float key per uid,
        # new uids get the midpoint of their neighbours' keys (renumbered when gaps run out).
        self._sorted_uids: list[str] = []
        self._order_key: dict[str, float] = {}
        self._grow(64)

    # -- rows -----------------------------------------------------------------------------------
    def _grow(self, n: int) -> None:
        old = len(self.active)
        if n <= old:
            return

        def widen(a: np.ndarray, fill) -> np.ndarray:
            out = np.full(n, fill, dtype=a.dtype)
            out[:old] = a
            return out

        if old == 0:
            self.active = np.zeros(n, dtype=bool)
            for name, fill, dtype in self._column_specs():
                self._cols[name] = np.full(n, fill, dtype=dtype)
        else:
            self.active = widen(self.active, False)
            fills = {name: fill for name, fill, _ in self._column_specs()}
            for name in list(self._cols):
                self._cols[name] = widen(self._cols[name], fills[name])
            for name in list(self._res):
                self._res[name] = widen(self._res[name], 0.0)
        self.records.extend([None] * (n - old))
        self.tasks.extend([None] * (n - old))

    def _column_specs(self):
        yield "kind", 0, np.int64
        yield "cores", 0, np.int64
        yield "gpus", 0, np.int64
        yield "cap", np.nan, float
        yield "min", np.nan, float
        yield "prior_rt", np.nan, float
        yield "size_hint", np.nan, float
        yield "order", np.nan, float
        yield "rank", np.nan, float
        yield "fixed", False, bool
        yield "storable", False, bool
        yield "has_prior", False, bool
        yield "declared", np.nan, float
        yield "unmanaged", False, bool
        for f in self.features:
            yield "x:" + f, np.nan, float

    def column(self, name: str) -> np.ndarray:
        return self._cols[name]

    def has_column(self, name: str) -> bool:
        return name in self._cols

    def resource(self, name: str) -> np.ndarray:
        """Per-row usage of a resource (0 where a job does not declare it)."""
        col = self._res.get(name)
        if col is None:
            col = self._res[name] = np.zeros(len(self.active))
        return col

    def __len__(self) -> int:
        return len(self.slot_of)

    def __contains__(self, uid: str) -> bool:
        return uid in self.slot_of

    def add(self, record: JobRecord) -> int:
        """Add (or refresh) a ready job; returns its row."""
        slot = self.slot_of.get(record.uid)
        if slot is None:
            if self._free:
                slot = self._free.pop()
            else:
                if self._n >= len(self.active):
                    self._grow(2 * len(self.active))
                slot = self._n
                self._n += 1
            self.slot_of[record.uid] = slot
            self._insert_order(record.uid)
        self.records[slot] = record
        self.active[slot] = True
        c = self._cols
        c["storable"][slot] = bool(record.storable)
        c["declared"][slot] = float(record.declared_mem_mb) if record.declared_mem_mb else np.nan
        c["order"][slot] = self._order_key[record.uid]
        c["rank"][slot] = np.nan
        c["fixed"][slot] = bool(record.fixed_mem)
        c["unmanaged"][slot] = unmanaged = bool(self._unmanaged_of(record))
        c["cores"][slot] = max(0, int(record.cores))
        for col in self._res.values():
            col[slot] = 0.0
        for name, value in record.resources.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                self.resource(name)[slot] = float(value)
        task = None if self._task_of is None or unmanaged else self._task_of(record)
        self.tasks[slot] = task
        self.tasks.stale.discard(slot)
        if task is None:
            c["kind"][slot] = -1
            return slot
        kind = self.kind_id.get(task.kind)
        if kind is None:
            kind = self.kind_id[task.kind] = len(self.kinds)
            self.kinds.append(task.kind)
        c["kind"][slot] = kind
        c["cores"][slot] = max(0, int(task.cores))
        c["gpus"][slot] = max(0, int(task.gpus))
        c["cap"][slot] = np.nan if task.cap_mb is None else float(task.cap_mb)
        c["has_prior"][slot] = task.prior_mb is not None
        c["min"][slot] = np.nan if task.min_mb is None else float(task.min_mb)
        c["prior_rt"][slot] = np.nan if task.prior_runtime_s is None else float(task.prior_runtime_s)
        c["size_hint"][slot] = np.nan if task.size_hint is None else float(task.size_hint)
        for f in self.features:
            x = self._x_of(task, f)
            c["x:" + f][slot] = np.nan if x is None else float(x)
        return slot

    def set_cap(self, slot: int, cap_mb: float | None) -> None:
        """Give the job in ``slot`` a new cap (its request is replaced, nothing else is rebuilt)."""
        self.set_caps(np.array([slot], dtype=np.int64), np.array([np.nan if cap_mb is None else cap_mb], dtype=float))

    def set_caps(self, slots: np.ndarray, caps: np.ndarray) -> None:
        """New caps (NaN: none) for the jobs in ``slots``, at once: thousands of jobs may cross a
        size bound after one finish. The cap column changes now; each job's request is rebuilt
        with its new cap when it is next read."""
        slots = np.asarray(slots, dtype=np.int64)
        caps = np.asarray(caps, dtype=float)
        if caps.shape != slots.shape:
            raise ChromoschedError(f"set_caps: {len(caps)} caps for {len(slots)} rows")
        has = self._cols["kind"][slots] >= 0  # rows without a request keep none
        slots, caps = slots[has], caps[has]
        old = self._cols["cap"][slots]
        changed = ~((old == caps) | (np.isnan(old) & np.isnan(caps)))
        self._cols["cap"][slots[changed]] = caps[changed]
        self.tasks.stale.update(slots[changed].tolist())

    def remove(self, uid: str) -> None:
        slot = self.slot_of.pop(uid, None)
        if slot is None:
            return
        self.active[slot] = False
        self.records[slot] = None
        self.tasks[slot] = None
        self.tasks.stale.discard(slot)
        self._free.append(slot)
        i = bisect.bisect_left(self._sorted_uids, uid)
        if i < len(self._sorted_uids) and self._sorted_uids[i] == uid:
            del self._sorted_uids[i]
        self._order_key.pop(uid, None)

    def slots(self) -> np.ndarray:
        return np.flatnonzero(self.active)

    def set_rank(self, uid: str, rank: float | None) -> None:
        """One ready job's critical-path rank (None: no rank)."""
        slot = self.slot_of.get(uid)
        if slot is not None:
            self._cols["rank"][slot] = np.nan if rank is None else rank

    def set_ranks(self, rank_of: Mapping[str, float]) -> None:
        """Critical-path ranks by uid (jobs not named keep no rank)."""
        col = self._cols["rank"]
        col[:] = np.nan
        for uid, slot in self.slot_of.items():
            r = rank_of.get(uid)
            if r is not None:
                col[slot] = r

    # -- tie-break keys ---------------------------------------------------------------------------
    def _insert_order(self, uid: str) -> None:
        keys = self._order_key
        uids = self._sorted_uids
        i = bisect.bisect_left(uids, uid)
        lo = keys[uids[i - 1]] if i > 0 else 0.0
        hi = keys[uids[i]] if i < len(uids) else lo + 2.0**20
        uids.insert(i, uid)
        if hi - lo < 1e-6:
            for k, u in enumerate(uids):  # gaps used up: renumber everything, evenly spaced
                keys[u] = float(k + 1) * 2.0**10
            col = self._cols["order"]
            for u, slot in self.slot_of.items():
                if u in keys:
                    col[slot] = keys[u]
            return
        keys[uid] = (lo + hi) / 2.0


class _Requests(list):
    """The :class:`TaskRequest` of each row. A row whose cap was set in bulk (``set_caps``) is
    marked stale and gets its request rebuilt with the cap column's value when it is first read."""

    def __init__(self, table: ReadyJobs):
        super().__init__()
        self._table = table
        self.stale: set[int] = set()

    def _fresh(self, i: int) -> None:
        self.stale.discard(i)
        task = list.__getitem__(self, i)
        if task is not None:
            cap = float(self._table.column("cap")[i])
            list.__setitem__(self, i, replace(task, cap_mb=None if math.isnan(cap) else cap))

    def __getitem__(self, i):
        if self.stale and isinstance(i, (int, np.integer)) and i in self.stale:
            self._fresh(int(i))
        return list.__getitem__(self, i)

    def __iter__(self):
        for i in list(self.stale):
            self._fresh(i)
        return list.__iter__(self)


def preference_order(keys: Sequence[np.ndarray]) -> np.ndarray:
    """``np.lexsort(keys)`` (the last key sorts first, ties keep index order), faster: an unstable
    argsort of the primary key, then only the rows that tie on it are ordered, recursively, by the
    other keys and put back in their groups by a stable sort of integer group ids (lexsort's
    stable merge passes over all 10,000 rows per key cost several times that)."""
    primary = keys[-1]
    if len(keys) == 1:
        return np.argsort(primary, kind="stable")
    if np.isnan(primary).any():
        return np.lexsort(keys)
    order = np.argsort(primary)
    ranked = primary[order]
    tie = ranked[1:] == ranked[:-1]
    if not tie.any():
        return order
    grouped = np.zeros(len(order), dtype=bool)
    grouped[1:] |= tie
    grouped[:-1] |= tie
    pos = np.flatnonzero(grouped)  # sorted positions inside runs of equal primary keys
    group_at = np.zeros(len(order), dtype=np.int64)
    group_at[1:] = np.cumsum(~tie)
    group_of = np.empty(len(order), dtype=np.int64)
    group_of[order] = group_at
    rows = np.sort(order[pos])  # index order: the last tie-break, as lexsort's
    rows = rows[preference_order([k[rows] for k in keys[:-1]])]
    order[pos] = rows[np.argsort(group_of[rows], kind="stable")]
    return order


def allocations_vectorised(
    policy: DynamicPolicy,
    kind: str,
    x: Mapping[str, np.ndarray],
    cap: np.ndarray,
    min_mb: np.ndarray,
    failed: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """:meth:`DynamicPolicy._allocations` over arrays: (memory to give, point prediction)."""
    f, reg = policy._mem_reg(kind)
    points = reg.predict_many(x[f])
    # Few-shot job types (no prior): at least a power law above the largest measured size.
    sized = policy._extrapolated(reg, x[f], points) if policy.config.extrapolate and not reg.has_prior() else points
    add, frac = reg.margin()
    mems = sized * (1.0 + frac) + add
    # NaN = none (no cap, no failure, no minimum): np.fmin/np.fmax ignore NaN operands.
    if kind not in policy._cap_exceeded:
        mems = np.fmin(mems, np.where(np.isnan(failed), cap, np.nan))  # a failed job's cap is lifted
    mems = np.fmax(mems, policy.config.escalation * failed)
    mems = np.fmax(mems, min_mb)
    budget = policy.capacity.mem_mb
    return np.minimum(np.maximum(mems, 1e-6 * budget), budget), points


def runtimes_vectorised(
    policy: DynamicPolicy, kind: str, x: Mapping[str, np.ndarray], prior_rt: np.ndarray
) -> np.ndarray:
    """:meth:`DynamicPolicy._runtimes` over arrays (NaN = no runtime known)."""
    f = policy.chosen_feature(kind)
    reg = policy.runtime.get(policy._key(kind, f))
    if not reg.ready() or np.isnan(x[f]).any():
        return prior_rt
    return reg.predict_many(x[f])


def select_vectorised(
    policy: DynamicPolicy,
    table: ReadyJobs,
    slots: np.ndarray,
    free: Capacity,
    running: Sequence[RunningTask] = (),
    other_free: Mapping[str, float] | None = None,
    use_rank: bool = False,
    now: float | None = None,
) -> list[Allocation] | None:
    """:meth:`DynamicPolicy.select` over ``table``'s rows ``slots`` (all registered with the policy),
    also packing every resource in ``other_free`` (name -> free amount). None: the policy's own
    per-job path must decide. ``use_rank``: prefer jobs by critical-path rank, then runtime.
    ``now`` (the clock of the running jobs' starts): keep memory for the longest ready job
    (:mod:`chromosched.dynamic.head_reservation`) when at most ``area_max_items`` jobs are ready.

    Probe mode (``cold_start="probe"``): a job type with no prior and no measured job is probed by
    the policy's own path (None here; while a probe runs, those jobs wait and the others are packed
    here, as there); types with a few measurements are sized with the policy's
    power-law extrapolation and get their smallest job started first (``_explore``), as there."""
    cfg = policy.config
    if cfg.pooled_reserve_z is not None or cfg.priority not in ("longest", "biggest", "none"):
        return None
    if len(slots) == 0:
        return []
    policy._register(r.task for r in running)
    kind_col = table.column("kind")[slots]
    kinds = np.flatnonzero(np.bincount(kind_col)) if kind_col.min() >= 0 else np.unique(kind_col)
    names = [table.kinds[k] for k in kinds.tolist()]
    if cfg.cold_start == "probe":
        waiting = [k for k, name in zip(kinds.tolist(), names) if policy.needs_probe(name)]
        if waiting:
            if not any(policy.needs_probe(r.task.kind) for r in running):
                return None  # a probe to start, or memory to drain for one: the policy's path
            # A probe runs: the policy packs the other types' jobs and the unprobed ones wait.
            held = np.isin(kind_col, waiting)
            for slot in slots[held].tolist():
                policy._check_feasible(table.tasks[slot])  # the policy checks every ready job
            slots = slots[~held]
            if len(slots) == 0:
                return []
            kind_col = kind_col[~held]
            kinds = np.array([k for k in kinds.tolist() if k not in waiting], dtype=np.int64)
            names = [table.kinds[k] for k in kinds.tolist()]
    elif not all(policy._trained(name) for name in names):
        return None
    cap = table.column("cap")[slots]
    min_mb = table.column("min")[slots]
    failed = np.full(len(slots), np.nan)
    if policy._failed_at:
        pos = {int(s): i for i, s in enumerate(slots.tolist())}
        for task_id, amount in policy._failed_at.items():
            slot = table.slot_of.get(task_id)
            if slot is not None and slot in pos:
                failed[pos[slot]] = amount
    _check_feasible(policy, table, slots, min_mb, failed)
    n_ready = len(slots)
    learning = cfg.cold_start == "probe" and bool(_learning(policy, kinds, names, running))
    if running and not learning:
        # A job that needs more cores, GPUs or another resource than is free cannot start in this
        # round whatever its memory (no packer takes it): it is not predicted. With one core free
        # that is most of 10,000 jobs. (Not while a type is learning: _explore looks at them all.)
        fits = _fits_alone(table, slots, free, other_free)
        if fits is not None and not fits.all():
            for k, name in zip(kinds.tolist(), names):  # a type missing its feature: the policy's path
                if np.isnan(table.column("x:" + policy.chosen_feature(name))[slots[kind_col == k]]).any():
                    return None
            slots, kind_col, cap, min_mb, failed = slots[fits], kind_col[fits], cap[fits], min_mb[fits], failed[fits]
            if len(slots) == 0:
                return []

    mem = np.empty(len(slots))
    point = np.empty(len(slots))
    rt = np.empty(len(slots))
    xs_all = {f: table.column("x:" + f)[slots] for f in table.features}
    prior_rt = table.column("prior_rt")[slots]
    for k, name in zip(kinds.tolist(), names):
        # One job type (the usual case): its rows are all rows, no copies.
        rows = slice(None) if len(kinds) == 1 else np.flatnonzero(kind_col == k)
        x = {f: v[rows] for f, v in xs_all.items()}
        f = policy.chosen_feature(name)
        if np.isnan(x[f]).any():
            return None
        mem[rows], point[rows] = allocations_vectorised(policy, name, x, cap[rows], min_mb[rows], failed[rows])
        rt[rows] = runtimes_vectorised(policy, name, x, prior_rt[rows])

    # Preference order (ties in the knapsack, the list order for first fit): as the policy's.
    order_key = table.column("order")[slots]
    rt0 = np.nan_to_num(rt, nan=0.0)
    if cfg.priority == "longest":
        keys = [order_key, -mem, -rt0]
    elif cfg.priority == "biggest":
        keys = [order_key, -mem]
    else:
        keys = [order_key]
    length = rt0
    if use_rank:
        rank = table.column("rank")[slots]
        keys.append(-np.nan_to_num(rank, nan=0.0))
        # The area objective (memory x time) weighs a job by its whole remaining chain, not only
        # its own runtime: long chains start first.
        length = np.where(np.isnan(rank), rt0, rank)
    keys = keys[:1] + [k for k in keys[1:] if k.min() != k.max()]  # a constant key orders nothing
    packer = policy._packer
    if not isinstance(packer, (KnapsackPacker, GreedyPacker, FirstFitPacker)):
        return None
    extra_lim = {name: max(float(lim), 0.0) for name, lim in (other_free or {}).items()}
    limits = Limits(
        mem=max(free.mem_mb, 0.0), cores=free.cores, gpus=free.gpus, max_items=free.max_tasks, extra=extra_lim or None
    )
    # Head reservation (``now`` given): the longest ready job's priority, NaN where unknown.
    reserve = now is not None and n_ready <= cfg.area_max_items
    priority = (np.where(np.isnan(rank), rt, rank) if use_rank else rt) if reserve else None
    rows = None
    if isinstance(packer, KnapsackPacker) and not learning and not reserve:
        # Usually only one more job fits (one core free): the best one needs no sort of all jobs.
        used = np.minimum(point, mem) if cfg.extrapolate else mem
        rows = _single_pick(
            mem,
            table.column("cores")[slots],
            table.column("gpus")[slots],
            limits,
            _values(cfg, used, length, n_ready),
            {name: table.resource(name)[slots] for name in extra_lim},
            keys,
        )
    if rows is None:
        rows = _packed_rows(
            policy,
            table,
            slots,
            kind_col,
            kinds,
            names,
            mem,
            point,
            keys,
            length,
            limits,
            extra_lim,
            running,
            n_ready,
            (priority, rt, now) if reserve else None,
        )
    chosen = []
    for row in rows:
        task = table.tasks[int(slots[row])]
        alloc = Allocation(
            task,
            min(float(mem[row]), policy.capacity.mem_mb),
            float(point[row]),
            None if math.isnan(rt[row]) else float(rt[row]),
        )
        policy._launched[task.task_id] = alloc
        chosen.append(alloc)
    if not chosen and not running:
        i = int(np.argmin(mem))
        raise ChromoschedError(
            f"task {table.tasks[int(slots[i])].task_id}: nothing is running and it still does not fit the free "
            f"resources ({mem[i]:.6g} MB needed, {free.mem_mb:.6g} MB free)"
        )
    return chosen


def _values(cfg, used: np.ndarray, length: np.ndarray, n_ready: int) -> np.ndarray | None:
    """The knapsack's item values (None: memory): the policy's objective over arrays (the area
    objective only with at most ``area_max_items`` ready jobs)."""
    if cfg.objective == "area" and n_ready <= cfg.area_max_items and bool(np.any(length != 0)):
        return used * np.maximum(length, 1e-9) ** cfg.area_power
    if cfg.extrapolate:
        # With conservative few-shot allocations the knapsack values the memory a job will really
        # use (its point prediction), as the policy does.
        return used
    return None


def _single_pick(mem, cores, gpus, limits: Limits, values, extra, keys) -> list[int] | None:
    """:meth:`KnapsackPacker.select_arrays` over the jobs in preference order, for the rounds where
    it takes every candidate or at most one (e.g. one core free): rows in the caller's (unsorted)
    order, or None when the knapsack must run. The one job is the most valuable (the biggest), the
    first in preference order on ties: only the tied jobs are sorted, not all 10,000."""
    _check_limits(limits)
    if limits.max_items is not None and limits.max_items < 1:
        return []
    arr = _Arrays.from_arrays(mem, cores, gpus, extra, limits, values)
    cand = np.flatnonzero(arr.alone_ok(limits))
    if len(cand) == 0:
        return []
    if len(cand) == 1:
        return [int(cand[0])]
    if arr.fits(cand, limits) or not KnapsackPacker._at_most_one(arr, cand, limits):
        return None
    gain = (arr.mem if arr.values is None else arr.values)[cand]
    if np.isnan(gain).any():
        return None
    tied = cand[gain == gain.max()]
    if len(tied) > 1:
        tied = tied[preference_order([k[tied] for k in keys])]
    return [int(tied[0])]


def _packed_rows(
    policy, table, slots, kind_col, kinds, names, mem, point, keys, length, limits, extra_lim, running, n_ready, head
) -> list[int]:
    """The packer's choice over all jobs in preference order (and ``_explore``'s): rows. ``head``:
    (priority, runtime, now) for the head reservation, or None."""
    cfg = policy.config
    packer = policy._packer
    order = preference_order(keys)
    mem_o = mem[order]
    used_o = np.minimum(point[order], mem_o) if cfg.extrapolate else mem_o
    values = _values(cfg, used_o, length[order], n_ready)
    extra_use = {name: table.resource(name)[slots][order] for name in extra_lim}
    cores = table.column("cores")[slots][order]
    gpus = table.column("gpus")[slots][order]
    explore = []
    if cfg.cold_start == "probe":
        explore = _explore(
            policy, table, slots, order, kind_col, names, kinds, mem_o, cores, gpus, limits, extra_use, running
        )
    if explore:
        # The policy's _explore picks first, the packer fills what they leave.
        taken = np.zeros(len(order), dtype=bool)
        taken[explore] = True
        rest = np.flatnonzero(~taken)
        left = _minus(limits, explore, mem_o, cores, gpus, extra_use)
        filled = _pack_subset(packer, rest, left, mem_o, cores, gpus, values, extra_use)
        picked = explore + (sorted(filled) if isinstance(packer, KnapsackPacker) else filled)
    else:
        plan = None
        if head is not None:
            priority, rt, now = head
            ends = []
            for r in running:
                runtime = r.predicted_runtime_s
                if runtime is None:
                    runtime = policy.predicted_runtime(r.task)
                ends.append((math.inf if runtime is None else r.started_at + runtime, float(r.mem_mb), r.started_at))
            # Only a head sized near its prediction is worth waiting for: an allocation inflated
            # by extrapolation (sizes not yet climbed) would hold memory for what it will not use.
            tight = np.isfinite(point[order]) & (mem_o <= TIGHT * np.maximum(point[order], 1e-9))
            plan = plan_head(mem_o, np.where(tight, priority[order], np.nan), rt[order], limits.mem, ends, now)
        if plan is None:
            picked = packer.select_arrays(mem_o, cores, gpus, limits=limits, values=values, extra=extra_use)
        else:
            picked = _pack_around_head(plan, packer, mem_o, cores, gpus, limits, values, extra_use)
        if isinstance(packer, KnapsackPacker):
            picked = sorted(picked)  # the policy's order: preference order
    return [int(order[i]) for i in picked]


def _fits_alone(table: ReadyJobs, slots, free: Capacity, other_free) -> np.ndarray | None:
    """Rows whose cores, GPUs and other resources fit what is free on their own (memory aside),
    as the packers' own test; None when nothing but memory is constrained."""
    fits = None
    for col, lim in ((table.column("cores"), free.cores), (table.column("gpus"), free.gpus)):
        if lim is not None and lim < UNLIMITED:
            ok = col[slots] <= lim + 1e-9
            fits = ok if fits is None else fits & ok
    for name, lim in (other_free or {}).items():
        lim = max(float(lim), 0.0)
        if not math.isfinite(lim):
            return None  # the packer reports the bad limit
        if lim < UNLIMITED:
            ok = table.resource(name)[slots] <= lim + 1e-9
            fits = ok if fits is None else fits & ok
    return fits


def _learning(policy: DynamicPolicy, kinds, names, running) -> list[tuple[str, int]]:
    """(name, kind id) of the still-learning types with nothing running (no prior, fewer than 3
    measured jobs): ``_explore`` starts the smallest job of each."""
    busy = {r.task.kind for r in running}
    learning = []
    for k, name in zip(kinds.tolist(), names):
        reg = policy.memory.get(name)
        if name not in busy and not reg.has_prior() and reg.n_observed < 3:
            learning.append((name, k))
    return learning


# A head is reserved for only while its allocation is at most this multiple of its point prediction.
TIGHT = 1.5


def _minus(limits: Limits, rows, mem_o, cores, gpus, extra_use) -> Limits:
    """``limits`` less what the jobs at ``rows`` (positions in preference order) take."""
    rows = np.asarray(rows, dtype=np.int64)
    return Limits(
        mem=max(limits.mem - float(mem_o[rows].sum()), 0.0),
        cores=None if limits.cores is None else limits.cores - int(cores[rows].sum()),
        gpus=None if limits.gpus is None else limits.gpus - int(gpus[rows].sum()),
        max_items=None if limits.max_items is None else limits.max_items - len(rows),
        extra={k: v - float(extra_use[k][rows].sum()) for k, v in (limits.extra or {}).items()} or None,
    )


def _pack_subset(packer, rows: np.ndarray, lim: Limits, mem_o, cores, gpus, values, extra_use) -> list[int]:
    """The packer's choice among the jobs at positions ``rows`` within ``lim``: positions."""
    if len(rows) == 0 or lim.mem <= 0:
        return []
    chosen = packer.select_arrays(
        mem_o[rows],
        cores[rows],
        gpus[rows],
        limits=lim,
        values=None if values is None else values[rows],
        extra={k: v[rows] for k, v in extra_use.items()},
    )
    return rows[chosen].tolist()


def _pack_around_head(plan: HeadPlan, packer, mem_o, cores, gpus, limits: Limits, values, extra_use) -> list[int]:
    """Positions to start: the head first when it fits, then the packer's choice among the rest;
    when it does not fit, only jobs that leave its reserved start as it is (jobs beyond the
    predicted end of that wait share the memory left over beside the head, shorter jobs any)."""
    n = len(mem_o)

    def pack(rows: np.ndarray, lim: Limits) -> list[int]:
        return _pack_subset(packer, rows, lim, mem_o, cores, gpus, values, extra_use)

    if plan.fits:
        arrays = _Arrays.from_arrays(mem_o, cores, gpus, extra_use, limits, None)
        if not arrays.fits([plan.head], limits):  # it fits the memory but not the cores, GPUs or job count
            return pack(np.arange(n), limits)
        rest = _minus(limits, [plan.head], mem_o, cores, gpus, extra_use)
        others = np.flatnonzero(np.arange(n) != plan.head)
        return [plan.head] + pack(others, rest)
    idx = np.arange(n)
    long_rows = idx[~plan.short & (idx != plan.head) & (mem_o <= plan.spare)]
    first = pack(long_rows, replace(limits, mem=min(limits.mem, plan.spare)))
    left = _minus(limits, first, mem_o, cores, gpus, extra_use)
    return first + pack(idx[plan.short], left)


def _explore(
    policy: DynamicPolicy,
    table: ReadyJobs,
    slots,
    order,
    kind_col,
    names,
    kinds,
    mem_o,
    cores,
    gpus,
    limits: Limits,
    extra_use,
    running,
) -> list[int]:
    """:meth:`DynamicPolicy._explore` over arrays: positions (in preference order) of the smallest
    ready job of each still-learning type (no prior, fewer than 3 measured jobs, none running)
    that fits, in the type's name order; other resources must fit too."""
    learning = _learning(policy, kinds, names, running)
    if not learning:
        return []
    kind_o = kind_col[order]
    hint = table.column("size_hint")[slots][order]
    primary = table.column("x:" + policy.config.feature)[slots][order]
    size = np.where(np.isnan(hint), primary, hint)
    tie = table.column("order")[slots][order]  # sorts like the uid (= task id)
    mem, n_cores, n_gpus, count = limits.mem, limits.cores, limits.gpus, limits.max_items
    left = dict(limits.extra or {})
    picks = []
    for _rule, k in sorted(learning):  # rules in name order
        rows = np.flatnonzero(kind_o == k)
        i = int(rows[np.lexsort((tie[rows], size[rows]))[0]])
        if (
            mem_o[i] > mem
            or (n_cores is not None and cores[i] > n_cores)
            or (n_gpus is not None and gpus[i] > n_gpus)
            or (count is not None and count < 1)
            or any(extra_use[r][i] > v for r, v in left.items())
        ):
            continue
        picks.append(i)
        mem -= mem_o[i]
        n_cores = None if n_cores is None else n_cores - int(cores[i])
        n_gpus = None if n_gpus is None else n_gpus - int(gpus[i])
        count = None if count is None else count - 1
        for r in left:
            left[r] -= float(extra_use[r][i])
    return picks


def _check_feasible(policy: DynamicPolicy, table: ReadyJobs, slots, min_mb, failed) -> None:
    """The policy's per-job feasibility errors, found with array compares; the message is the policy's."""
    cap = policy.capacity
    bad = np.zeros(len(slots), dtype=bool)
    if cap.cores is not None:
        bad |= table.column("cores")[slots] > cap.cores
    if cap.gpus is not None:
        bad |= table.column("gpus")[slots] > cap.gpus
    bad |= min_mb > cap.mem_mb  # NaN (none) compares False
    bad |= failed >= cap.mem_mb * (1 - 1e-9)
    for i in np.flatnonzero(bad).tolist():
        policy._check_feasible(table.tasks[int(slots[i])])
