"""Searches for an order of tasks that minimises the peak memory (list or waves model).

* ``hill_climb``: the paper's stochastic hill climbing, the baseline. From a permutation, apply
  M_r ~ Unif{1..M_max} random pair swaps; keep the result if its peak is strictly lower; restart
  from a random permutation. The paper does not publish its budget; ours splits the evaluation
  budget into ``restarts`` equal slices (default 10 restarts, M_max = 4).
* ``anneal``: ours, simulated annealing. The budget is split into ``cycles`` runs; each later run
  restarts from the best order so far with a halved start temperature (reheating); the first run
  may be split into several independent chains. Temperatures are fractions of the current peak,
  so they mean the same for any memory unit.

  - list model: one move = swap two positions or move one task to another position (insertion,
    which shifts the tasks between and keeps the large/small alternation of good orders);
    energy = the peak.
  - waves model (a min-max partition of the tasks into blocks): one move = 1-3 swaps between
    different blocks, the first one taking a task out of the block with the largest sum (any move
    that leaves that block alone cannot lower the peak, so it is not worth an evaluation), each
    next one out of the block the previous swap made heavier (an ejection chain); energy
    = the 8-norm of the block sums, which equals the peak up to a small term that rewards lowering
    the next-largest blocks too, so the search can cross plateaus of equal peak. Four chains in the
    first run, because a single chain can lock the two largest tasks into the short last block.

* ``ils``: ours for the list model, iterated local search over whole neighbourhoods evaluated at
  once (``PeakEvaluator.batch_peaks``, numpy, about 5-7 times the evaluations per second of the
  scalar loop). A descent evaluates every insertion (take a task out, put it back at any other
  position: exact re-insertion) and every non-adjacent swap of the current order, 651 distinct
  orders for 22 chromosomes, in a random order and in batches of 128, and moves to the best of the
  first batch that improves by (peak, spread), where
  spread is the integral over time of (memory in use / initial peak)^16: good orders have a flat
  memory profile with many levels close to the peak, and the spread lets the descent keep lowering
  the near-peak levels while the peak itself stays put. At a local optimum the search kicks the
  accepted order with 2-6 random insertions and descends again; a new local optimum is accepted when
  its peak is not higher, or with probability exp(-increase / (0.005 x peak)). That is phase 1
  (30 % of the budget). Phase 2 turns the min-max into a sequence of decision problems: the energy
  is the excess area, the integral of (memory in use - target) where positive, with the target
  0.3 % below the best peak so far; it falls with every moment above the target that gets lower,
  not only the highest one, so it guides the search where the peak alone is flat. An order with no
  excess beats the best peak; the target is then lowered below the new best and the search goes on.

* ``population``: population annealing for the list model, many annealing chains in lockstep so
  that one numpy ``batch_peaks`` call evaluates one proposal of every chain (about 7 times the
  scalar loop's speed). Every chain starts from the initial order; a proposal is a random swap or
  insertion; acceptance is Metropolis on the peak with a temperature falling geometrically from
  3 % to 0.03 % of the best peak. After each of the first stages (a quarter of the steps each), the
  worse half of the chains is replaced by copies of the better half, so the effort moves to the
  promising basins while hundreds of chains keep the search diverse: single runs of the annealing
  or the local search fall into the same few funnels from most seeds (GRCh37 K=3: 456.52).

* ``elite_search``: recombination of good orders for the list model. A pool of the lowest distinct
  orders (the independent runs' results) makes children by path relinking (walk from one pool order
  towards another, one of the second's tasks put at its position per step, greedily) or by ruin and
  recreate (remove 3-5 tasks, re-insert each at its exactly evaluated best position); each child
  descends by the excess area (as the local search's phase 2) and may replace the worst pool order.
  Runs that end in different orders of similar peak meet here (GRCh37, K=5: 717.14 -> 716.30).

* ``multistart`` (the list model's default where a C compiler exists, fifth round of issue #17):
  many short annealing runs in compiled code (:mod:`chromosched.static.multistart_annealing`),
  about 100 times the evaluations per second of the numpy searches. The better orders are reached
  by few runs in a thousand or fewer (GRCh37 K=6: 842.17 from 1 of 2,000 runs of 200,000), so the number of
  runs is what pays; odd runs restart from the best order so far.

* ``portfolio`` (the list model's default without a C compiler): its first 8,500,000 evaluations are independent runs of
  200,000 evaluations, alternating annealing and iterated local search, each from the initial order
  with its own seed; the next 1,500,000 an elite search from the runs' results (the tables' budget
  is the sum, 10,000,000); larger budgets add population-annealing runs of 2,500,000 evaluations.
  The best order wins. Short runs vary a lot with the seed (GRCh37, K=5, eight seeds of 200,000: annealing
  719.75-727.62, local search 721.19-731.81), so restarts pay more than one long run, and the two
  methods find their best orders at different K. Starting the local search from the annealing's
  result was measured to leave it stuck there.

All searches take the same ``PeakEvaluator`` and stop after exactly ``budget`` peak evaluations
(a batch counts one evaluation per order in it), so they are compared at equal cost; all are
deterministic for a given seed; all spend their first evaluation on the initial order (the
sequential one by default), so they never return anything worse than it.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..errors import ChromoschedError
from . import multistart_annealing
from .peak_memory import PeakEvaluator

HILL_CLIMB_RESTARTS = 10
HILL_CLIMB_MAX_SWAPS = 4
ANNEAL_CYCLES = 3
# (start temperature, end temperature) as fractions of the peak, and chains in the first run.
ANNEAL_SETTINGS = {"list": (0.03, 0.0003, 1), "waves": (0.001, 0.00001, 4)}
WAVES_NORM = 8
WAVES_MAX_SWAPS = 3
ILS_POWER = 16
ILS_KICK = (2, 6)  # random insertions per kick
ILS_TEMPERATURE = 0.005  # phase 1: fraction of the peak (phase 2: ILS_EXCESS_TEMPERATURE x the excess area)
ILS_SPREAD_SHARE = 0.3  # of the budget for phase 1 (peak, spread); the rest targets excess areas
ILS_TARGET_STEP = 0.003  # phase 2 targets a level this fraction below the best peak
ILS_EXCESS_TEMPERATURE = 0.05
ILS_CHUNK = 128
PORTFOLIO_RUN = 200_000  # evaluations per independent run of the portfolio
# The portfolio's first part (the alternation above); beyond it, population annealing. Measured on
# GRCh37, K=3..9, at the tables' 8,500,000 evaluations: independent runs only were lower at K=4, 5, 8, 9
# (588.62, 717.14, 1129.55, 1259.48), equal at K=3, 7 and 0.014 % higher at K=6 than 1,000,000 of them
# followed by population annealing, so the tables' whole budget is independent runs.
PORTFOLIO_FIRST = 8_500_000
# Then an elite search (recombination of the runs' results) of this many evaluations; the tables'
# budget is PORTFOLIO_FIRST + ELITE_RUN.
ELITE_RUN = 1_500_000
ELITE_SIZE = 16  # distinct lowest orders of the independent runs kept for recombination
ELITE_RUIN = (3, 5)  # tasks removed and re-inserted, one by one at their best position
ELITE_RELINK_SHARE = 0.5  # of the children made by path relinking (the rest: ruin and recreate)
POPULATION_RUN = 2_500_000  # evaluations per population-annealing run of the portfolio
POPULATION_CHAINS = 512
# The portfolio's population runs cycle through these sizes: few chains anneal longer (64 chains:
# 39,000 steps each in 2.5 M evaluations), many chains cover more basins; each finds orders the others miss.
PORTFOLIO_CHAINS = (64, 128, 512)
POPULATION_TEMPERATURES = (0.03, 0.0003)  # start and end, fractions of the best peak
POPULATION_STAGES = 4  # resampling: after each stage but the last, the worse half copies the better half
METHODS = ("multistart", "portfolio", "elite", "population", "ils", "anneal", "hill_climb")


@dataclass(frozen=True)
class SearchResult:
    """The best order a search found (task indices) and what it cost."""

    order: tuple[int, ...]
    peak: float
    evaluations: int
    seconds: float
    method: str
    seed: int


def _start(evaluator: PeakEvaluator, initial: Sequence[int] | None) -> list[int]:
    order = list(range(evaluator.n)) if initial is None else list(initial)
    if sorted(order) != list(range(evaluator.n)):
        raise ChromoschedError(f"initial order must be a permutation of the {evaluator.n} tasks")
    return order


def _check_budget(budget: int) -> None:
    if budget < 1:
        raise ChromoschedError(f"budget must be at least 1 peak evaluation, got {budget}")


def hill_climb(
    evaluator: PeakEvaluator,
    budget: int,
    seed: int = 0,
    restarts: int = HILL_CLIMB_RESTARTS,
    max_swaps: int = HILL_CLIMB_MAX_SWAPS,
    initial: Sequence[int] | None = None,
) -> SearchResult:
    """The paper's stochastic hill climbing with random swaps and restarts, ``budget`` evaluations.

    Restart 0 starts from ``initial`` (the sequential order by default), later restarts from random
    permutations; each restart gets an equal share of the budget.
    """
    _check_budget(budget)
    if restarts < 1 or max_swaps < 1:
        raise ChromoschedError("hill climbing needs at least 1 restart and M_max >= 1")
    t0 = time.perf_counter()
    rng = random.Random(seed)
    n = evaluator.n
    peak_of = evaluator.peak_ticks
    used = 0
    best_order: list[int] = []
    best = None
    restarts = min(restarts, budget)
    for r in range(restarts):
        share = budget // restarts + (1 if r < budget % restarts else 0)
        cur = _start(evaluator, initial)
        if r > 0:
            rng.shuffle(cur)
        cur_peak = peak_of(cur)
        used += 1
        for _ in range(share - 1):
            cand = cur[:]
            for _ in range(rng.randint(1, max_swaps)):
                a, b = rng.randrange(n), rng.randrange(n)
                cand[a], cand[b] = cand[b], cand[a]
            p = peak_of(cand)
            used += 1
            if p < cur_peak:
                cur, cur_peak = cand, p
        if best is None or cur_peak < best:
            best, best_order = cur_peak, cur
    return SearchResult(tuple(best_order), evaluator.to_units(best), used, time.perf_counter() - t0, "hill_climb", seed)


# --- annealing -------------------------------------------------------------------------------
# A "state" is (energy, peak, hint): the energy drives acceptance, the peak decides the best order,
# the hint is what the move generator may use (the waves model's largest block).


def _list_state(evaluator: PeakEvaluator) -> Callable[[list[int]], tuple[float, int, int]]:
    peak_of = evaluator.peak_ticks

    def state(order: list[int]) -> tuple[float, int, int]:
        p = peak_of(order)
        return p, p, 0

    return state


def _waves_state(evaluator: PeakEvaluator) -> Callable[[list[int]], tuple[float, int, int]]:
    block_sums = evaluator.block_sums

    def state(order: list[int]) -> tuple[float, int, int]:
        sums = block_sums(order)
        p = max(sums)
        energy = p * sum((s / p) ** WAVES_NORM for s in sums) ** (1.0 / WAVES_NORM)
        return energy, p, sums.index(p)

    return state


def _list_move(
    cur: list[int], rng: random.Random, n: int, workers: int, hint: int, mem: Sequence[int] = ()
) -> list[int]:
    a = rng.randrange(n)
    b = rng.randrange(n - 1)
    if b >= a:
        b += 1
    cand = cur[:]
    if rng.random() < 0.5:
        cand[a], cand[b] = cand[b], cand[a]
    else:
        cand.insert(b, cand.pop(a))
    return cand


def _waves_move(
    cur: list[int], rng: random.Random, n: int, workers: int, hint: int, mem: Sequence[int] = ()
) -> list[int]:
    """1-3 swaps as an ejection chain: the first takes a task out of the largest block ``hint``;
    each next one takes a task out of the block the previous swap made heavier (known from the
    two tasks' memories, without evaluating), so a swap that overloads a block can be repaired
    within the same move."""
    cand = cur[:]
    source = hint
    for _ in range(rng.randint(1, WAVES_MAX_SWAPS)):
        a = rng.randrange(source * workers, min(n, source * workers + workers))
        while True:
            b = rng.randrange(n)
            if b // workers != source:
                break
        x, y = cand[a], cand[b]
        cand[a], cand[b] = y, x
        source = b // workers if mem[x] > mem[y] else a // workers
    return cand


def _anneal_run(
    state,
    move,
    rng: random.Random,
    n: int,
    workers: int,
    mem: Sequence[int],
    start: list[int],
    steps: int,
    temp0: float,
    temp1: float,
) -> tuple[list[int], int]:
    """One annealing chain of ``steps`` evaluations (plus one for ``start``); best order and peak."""
    rand, exp = rng.random, math.exp
    cur = start[:]
    cur_energy, best, hint = state(cur)
    best_order = cur[:]
    temp0 = max(temp0, 1e-9)
    temp1 = min(max(temp1, 1e-12), temp0)
    log_ratio = math.log(temp1 / temp0)
    for it in range(steps):
        temp = temp0 * exp(log_ratio * it / steps)
        cand = move(cur, rng, n, workers, hint, mem)
        energy, p, cand_hint = state(cand)
        if energy <= cur_energy or rand() < exp((cur_energy - energy) / temp):
            cur, cur_energy, hint = cand, energy, cand_hint
            if p < best:
                best, best_order = p, cand[:]
    return best_order, best


def anneal(
    evaluator: PeakEvaluator,
    budget: int,
    seed: int = 0,
    cycles: int = ANNEAL_CYCLES,
    t_start: float | None = None,
    t_end: float | None = None,
    chains: int | None = None,
    initial: Sequence[int] | None = None,
) -> SearchResult:
    """Simulated annealing (see the module docstring), exactly ``budget`` peak evaluations."""
    _check_budget(budget)
    t0 = time.perf_counter()
    default_start, default_end, default_chains = ANNEAL_SETTINGS[evaluator.model]
    t_start = default_start if t_start is None else t_start
    t_end = default_end if t_end is None else t_end
    chains = default_chains if chains is None else chains
    rng = random.Random(seed)
    n, workers = evaluator.n, evaluator.workers
    best_order = _start(evaluator, initial)
    best = evaluator.peak_ticks(best_order)
    used = 1
    if n < 2 or workers >= n:
        return SearchResult(tuple(best_order), evaluator.to_units(best), used, time.perf_counter() - t0, "anneal", seed)
    if evaluator.model == "list":
        state, move = _list_state(evaluator), _list_move
    else:
        state, move = _waves_state(evaluator), _waves_move
    cycles = max(1, cycles)
    for c in range(cycles):
        runs = chains if c == 0 else 1
        share = (budget - used) // (cycles - c)
        temp0, temp1 = best * t_start * 0.5**c, best * t_end
        for r in range(runs):
            steps = share // runs - 1  # each chain also evaluates its start
            if steps < 0:
                continue
            start = best_order[:]
            if c == 0 and r > 0:
                rng.shuffle(start)
            order, peak = _anneal_run(state, move, rng, n, workers, evaluator.mem, start, steps, temp0, temp1)
            used += steps + 1
            if peak < best:
                best, best_order = peak, order
    # Spend what integer division left over on a last cold chain, so the budget is exact.
    if budget - used >= 1:
        order, peak = _anneal_run(
            state, move, rng, n, workers, evaluator.mem, best_order, budget - used - 1, best * t_end, best * t_end
        )
        used = budget
        if peak < best:
            best, best_order = peak, order
    return SearchResult(tuple(best_order), evaluator.to_units(best), used, time.perf_counter() - t0, "anneal", seed)


# --- iterated local search (list model) ----------------------------------------------------------

_NEIGHBOURHOODS: dict[int, object] = {}


def neighbourhood(n: int):
    """Index rows of every insertion and every non-adjacent swap of n positions, each distinct
    neighbour once: ``order[rows]`` is the whole neighbourhood of ``order`` ((n-1)^2 insertions, of
    which n-1 are the adjacent swaps, plus (n-1)(n-2)/2 other swaps: 651 for n = 22)."""
    import numpy as np

    if n not in _NEIGHBOURHOODS:
        base = list(range(n))
        rows = []
        for a in range(n):
            for b in range(n):
                if a != b and b != a - 1:  # moving a one step left = moving a-1 one step right
                    row = base[:]
                    row.insert(b, row.pop(a))
                    rows.append(row)
        for a in range(n):
            for b in range(a + 2, n):
                row = base[:]
                row[a], row[b] = row[b], row[a]
                rows.append(row)
        _NEIGHBOURHOODS[n] = np.array(rows, dtype=np.int64).reshape(-1, n)
    return _NEIGHBOURHOODS[n]


def ils(
    evaluator: PeakEvaluator,
    budget: int,
    seed: int = 0,
    initial: Sequence[int] | None = None,
    power: int = ILS_POWER,
    kick: tuple[int, int] = ILS_KICK,
    temperature: float = ILS_TEMPERATURE,
) -> SearchResult:
    """Iterated local search with whole-neighbourhood descents (see the module docstring), list model,
    exactly ``budget`` peak evaluations: the first ``ILS_SPREAD_SHARE`` of them descend by (peak,
    spread), the rest by the excess area above a target just below the best peak."""
    import numpy as np

    _check_budget(budget)
    if evaluator.model != "list":
        raise ChromoschedError("the iterated local search is for the list model (waves: anneal)")
    t0 = time.perf_counter()
    rng = np.random.Generator(np.random.PCG64(seed))
    n = evaluator.n
    start = np.array(_start(evaluator, initial), dtype=np.int64)
    scale = evaluator.peak_ticks(start.tolist())
    search = _Ils(evaluator, budget, rng, kick)
    search.offer(start, scale)
    if n >= 2 and 1 < evaluator.workers < n:
        phase1 = max(1, int(budget * ILS_SPREAD_SHARE))

        def by_peak_then_spread(orders):
            peaks, spread = evaluator.batch_peaks(orders, scale, power)
            return peaks, peaks, spread

        search.run(start, phase1, by_peak_then_spread, temperature)
        # Phase 2: target the excess above a level just below the best peak; lower it on success.
        while search.used < budget:
            target = int(search.best_peak * (1 - ILS_TARGET_STEP))

            def by_excess(orders, target=target):
                peaks, excess = evaluator.batch_peaks(orders, threshold=target)
                return peaks, excess, peaks

            search.run(search.best, budget, by_excess, ILS_EXCESS_TEMPERATURE, stop_at_zero=True)
    return SearchResult(
        tuple(int(x) for x in search.best),
        evaluator.to_units(search.best_peak),
        search.used,
        time.perf_counter() - t0,
        "ils",
        seed,
    )


class _Ils:
    """Budget, best order and the descent/kick loop shared by both phases of ``ils``."""

    def __init__(self, evaluator: PeakEvaluator, budget: int, rng, kick: tuple[int, int]):
        self.evaluator, self.budget, self.rng, self.kick = evaluator, budget, rng, kick
        self.rows = neighbourhood(evaluator.n)
        self.used = 0
        self.best, self.best_peak = None, None

    def offer(self, order, peak: int) -> None:
        if self.best is None:
            self.used += 1  # the initial order's evaluation
        if self.best_peak is None or peak < self.best_peak:
            self.best, self.best_peak = order, int(peak)

    def _evaluate(self, orders, score, limit: int):
        """Evaluate (at most the budget left of) ``orders``; the best by (energy, tie-break) and
        its index. ``score`` returns (peaks, energy, tie-break) arrays."""
        import numpy as np

        orders = orders[: limit - self.used]
        self.used += len(orders)
        if not len(orders):
            return orders, None, 0
        peaks, energy, second = score(orders)
        i = int(np.lexsort((second, energy))[0])
        j = int(peaks.argmin())
        self.offer(orders[j], int(peaks[j]))
        return orders, (float(energy[i]), float(second[i])), i

    def run(self, start, limit: int, score, temperature: float, stop_at_zero: bool = False) -> None:
        """Descents from ``start`` and kicked copies of the accepted local optimum until ``limit``
        evaluations are used (or, with ``stop_at_zero``, until some order has energy 0)."""
        import numpy as np

        if self.used >= limit:
            return
        n = self.evaluator.n
        _, cur_energy, _ = self._evaluate(start[None, :], score, limit)
        cur = start
        home = home_energy = None
        while self.used < limit:
            # Descent: the neighbourhood in a random order, in chunks; move to the best of the first
            # chunk that improves; a local optimum when no chunk does.
            improved = True
            while improved and self.used < limit and not (stop_at_zero and cur_energy[0] == 0):
                improved = False
                rows = self.rows[self.rng.permutation(len(self.rows))]
                for c in range(0, len(rows), ILS_CHUNK):
                    cands, energy, i = self._evaluate(cur[rows[c : c + ILS_CHUNK]], score, limit)
                    if energy is None:
                        break
                    if energy[0] < cur_energy[0] or (
                        energy[0] == cur_energy[0] and energy[1] < cur_energy[1] * (1 - 1e-12)
                    ):
                        cur, cur_energy, improved = cands[i], energy, True
                        break
            if stop_at_zero and cur_energy[0] == 0:
                return
            if (
                home is None
                or cur_energy[0] <= home_energy[0]
                or self.rng.random()
                < math.exp(-(cur_energy[0] - home_energy[0]) / (temperature * max(home_energy[0], 1e-300)))
            ):
                home, home_energy = cur, cur_energy
            if self.used >= limit:
                return
            kicked = home.tolist()
            for _ in range(int(self.rng.integers(self.kick[0], self.kick[1] + 1))):
                a, b = (int(x) for x in self.rng.choice(n, 2, replace=False))
                kicked.insert(b, kicked.pop(a))
            cur = np.array(kicked, dtype=np.int64)
            _, energy, _ = self._evaluate(cur[None, :], score, limit)
            if energy is None:
                return
            cur_energy = energy


def population_anneal(
    evaluator: PeakEvaluator,
    budget: int,
    seed: int = 0,
    initial: Sequence[int] | None = None,
    chains: int = POPULATION_CHAINS,
    temperatures: tuple[float, float] = POPULATION_TEMPERATURES,
    stages: int = POPULATION_STAGES,
) -> SearchResult:
    """Population annealing (see the module docstring), list model, exactly ``budget`` evaluations."""
    import numpy as np

    _check_budget(budget)
    if evaluator.model != "list":
        raise ChromoschedError("the population annealing is for the list model (waves: anneal)")
    t0 = time.perf_counter()
    rng = np.random.Generator(np.random.PCG64(seed))
    n = evaluator.n
    start = np.array(_start(evaluator, initial), dtype=np.int64)
    best = evaluator.peak_ticks(start.tolist())
    best_order = start
    used = 1
    chains = max(1, min(chains, budget - 1))
    if n < 2 or not 1 < evaluator.workers < n or budget < 2:
        return SearchResult(
            tuple(int(x) for x in best_order),
            evaluator.to_units(best),
            used,
            time.perf_counter() - t0,
            "population",
            seed,
        )
    cur = np.tile(start, (chains, 1))
    energy = np.full(chains, best, dtype=np.int64)
    steps = -(-(budget - used) // chains)  # the last step may use fewer chains
    stage_len = max(1, steps // max(1, stages))
    cols = np.arange(n)[None, :]
    t_start, t_end = temperatures
    for step in range(steps):
        m = min(chains, budget - used)
        temp = best * t_start * (t_end / t_start) ** (step / steps)
        a = rng.integers(0, n, m)[:, None]
        b = rng.integers(0, n - 1, m)[:, None]
        b = b + (b >= a)
        # Insertion (the task at a moves to position b, the ones between shift) or swap of a and b.
        shift = np.where(
            a < b,
            np.where((cols >= a) & (cols < b), cols + 1, cols),
            np.where((cols > b) & (cols <= a), cols - 1, cols),
        )
        insertion = np.where(cols == b, a, shift)
        swap = np.where(cols == a, b, np.where(cols == b, a, cols))
        index = np.where((rng.random(m) < 0.5)[:, None], insertion, swap)
        cand = np.take_along_axis(cur[:m], index, axis=1)
        peaks, _ = evaluator.batch_peaks(cand)
        used += m
        accept = (peaks <= energy[:m]) | (rng.random(m) < np.exp((energy[:m] - peaks) / temp))
        cur[:m][accept] = cand[accept]
        energy[:m][accept] = peaks[accept]
        j = int(peaks.argmin())
        if peaks[j] < best:
            best, best_order = int(peaks[j]), cand[j].copy()
        if stages > 1 and (step + 1) % stage_len == 0 and (step + 1) // stage_len < stages:
            ranked = np.argsort(energy, kind="stable")
            half = chains // 2
            worse, better = ranked[chains - half :], ranked[:half]
            cur[worse], energy[worse] = cur[better], energy[better]
    return SearchResult(
        tuple(int(x) for x in best_order), evaluator.to_units(best), used, time.perf_counter() - t0, "population", seed
    )


def elite_search(
    evaluator: PeakEvaluator,
    budget: int,
    seed: int,
    elite: Sequence[Sequence[int]],
    target_step: float = ILS_TARGET_STEP,
) -> SearchResult:
    """Recombine and repair good orders (list model, exactly ``budget`` evaluations, at least one
    elite order).

    The pool holds the ``ELITE_SIZE`` lowest distinct orders of ``elite`` (each evaluated once,
    counted). Each step makes one child from the pool, by one of two moves:

    * **path relinking** (probability ``ELITE_RELINK_SHARE``): walk from pool order A towards pool
      order B; each step puts one of B's tasks at its position in B by an insertion, the best of
      those steps taken greedily; the child is the best order strictly inside the path. Relinking
      searches the orders between two runs' results, which no single run's small moves cross. An
      insertion shifts the tasks it passes, so a step can unmatch others: the walk is not monotone,
      but it ends when B is two positions away or the budget is spent (GRCh37, K=3, 5, 6: at most
      61-92 steps).
    * **ruin and recreate**: remove ``ELITE_RUIN`` random tasks from a pool order and re-insert
      them one by one, each at its best position (every position evaluated exactly; the tasks still
      out wait at the end).

    Orders are ranked by (excess area above a target ``target_step`` below the best peak so far,
    peak), as in the local search's second phase. The child then descends over the whole
    insertion/swap neighbourhood (first improving chunk of ``ILS_CHUNK``) and replaces the worst
    pool order when its peak is not higher and it is not already there (equal peaks replace, so the
    pool drifts across plateaus). Measured on GRCh37, K=5: from the independent runs' 717.14, one
    million evaluations reach 716.30 (the best known).
    """
    import numpy as np

    _check_budget(budget)
    if evaluator.model != "list":
        raise ChromoschedError("the elite search is for the list model (waves: anneal)")
    if not elite:
        raise ChromoschedError("the elite search needs at least one order to start from")
    t0 = time.perf_counter()
    rng = np.random.Generator(np.random.PCG64(seed))
    n = evaluator.n
    pool: list[tuple[int, tuple[int, ...]]] = []
    used = 0
    for order in elite:
        if used >= budget:
            break
        key = tuple(_start(evaluator, order))
        used += 1
        if all(key != o for _, o in pool):
            pool.append((evaluator.peak_ticks(list(key)), key))
    pool.sort()
    pool = pool[:ELITE_SIZE]
    best_peak, best_order = pool[0]
    searchable = n >= 3 and 1 < evaluator.workers < n

    def score(orders):
        """Evaluate (at most the budget left of) ``orders``: (orders, peaks, excess), or Nones."""
        nonlocal used, best_peak, best_order
        orders = orders[: budget - used]
        if not len(orders):
            return orders, None, None
        used += len(orders)
        peaks, excess = evaluator.batch_peaks(orders, threshold=int(best_peak * (1 - target_step)))
        j = int(peaks.argmin())
        if peaks[j] < best_peak:
            best_peak, best_order = int(peaks[j]), tuple(int(x) for x in orders[j])
        return orders, peaks, excess

    def first(peaks, excess) -> int:
        return int(np.lexsort((peaks, excess))[0])

    def descend(cur):
        """First-improvement descent by (excess, peak); the local optimum and its peak."""
        _, p0, e0 = score(cur[None, :])
        if p0 is None:
            return cur, None
        cur_key = (float(e0[0]), int(p0[0]))
        rows = neighbourhood(n)
        moved = True
        while moved and used < budget:
            moved = False
            shuffled = rows[rng.permutation(len(rows))]
            for c in range(0, len(shuffled), ILS_CHUNK):
                cands, peaks, excess = score(cur[shuffled[c : c + ILS_CHUNK]])
                if peaks is None:
                    break
                i = first(peaks, excess)
                if (float(excess[i]), int(peaks[i])) < cur_key:
                    cur, cur_key, moved = cands[i], (float(excess[i]), int(peaks[i])), True
                    break
        return cur, cur_key[1]

    def relink(a, b):
        cur, goal = np.array(a, dtype=np.int64), np.array(b, dtype=np.int64)
        child = child_key = None
        while True:
            differ = np.flatnonzero(cur != goal)
            if len(differ) <= 2:  # the next step would reach B (or its neighbour)
                return child
            steps = []
            for i in differ.tolist():
                row = cur.tolist()
                row.insert(i, row.pop(row.index(int(goal[i]))))
                steps.append(row)
            cands, peaks, excess = score(np.array(steps, dtype=np.int64))
            if peaks is None:
                return child
            i = first(peaks, excess)
            cur = cands[i]
            if child_key is None or (float(excess[i]), int(peaks[i])) < child_key:
                child, child_key = cur, (float(excess[i]), int(peaks[i]))

    def ruin(a):
        order = list(a)
        out = min(n - 1, int(rng.integers(ELITE_RUIN[0], ELITE_RUIN[1] + 1)))
        removed = [order.pop(int(rng.integers(len(order)))) for _ in range(out)]
        for r, task in enumerate(removed):
            waiting = removed[r + 1 :]
            steps = np.array([order[:p] + [task] + order[p:] + waiting for p in range(len(order) + 1)], dtype=np.int64)
            _, peaks, excess = score(steps)
            if peaks is None:
                return None
            order.insert(first(peaks, excess), task)
        return np.array(order, dtype=np.int64)

    while searchable and used < budget:
        if len(pool) >= 2 and rng.random() < ELITE_RELINK_SHARE:
            i, j = (int(x) for x in rng.choice(len(pool), 2, replace=False))
            child = relink(pool[i][1], pool[j][1])
        else:
            child = ruin(pool[int(rng.integers(len(pool)))][1])
        if child is None:
            continue
        child, peak = descend(child)
        key = tuple(int(x) for x in child)
        if peak is not None and peak <= pool[-1][0] and all(key != o for _, o in pool):
            pool[-1] = (peak, key)
            pool.sort()
    return SearchResult(best_order, evaluator.to_units(best_peak), used, time.perf_counter() - t0, "elite", seed)


def portfolio(
    evaluator: PeakEvaluator, budget: int, seed: int = 0, initial: Sequence[int] | None = None
) -> SearchResult:
    """Independent runs, then an elite search over their results, then population annealing; the
    best order. Exactly ``budget`` evaluations, list model.

    * the first ``PORTFOLIO_FIRST`` evaluations: independent runs of ``PORTFOLIO_RUN``, alternating
      annealing and iterated local search, each from the initial order; run 0 is
      ``anneal(budget=min(budget, PORTFOLIO_RUN), seed)``, run r > 0 uses seed ``seed * 1000 + r``
      (the last run of a part takes a tail under a quarter of a run);
    * the next ``ELITE_RUN``: ``elite_search`` (seed ``seed``) from every run's best order;
    * beyond: population-annealing runs of ``POPULATION_RUN`` (``PORTFOLIO_CHAINS`` in turn, seeds
      continuing the runs' sequence).

    Each part starts with the same evaluations as a portfolio of a smaller budget, and the elite
    search keeps its start's best, so a larger budget is never worse at the same seed, and the
    portfolio never worse than its run 0."""
    _check_budget(budget)
    if evaluator.model != "list":
        raise ChromoschedError("the portfolio is for the list model (waves: anneal)")
    t0 = time.perf_counter()
    best: SearchResult | None = None
    results: list[SearchResult] = []
    used = 0
    r = 0
    first = min(budget, PORTFOLIO_FIRST)
    elite_end = min(budget, PORTFOLIO_FIRST + ELITE_RUN)
    population_runs = 0
    while used < budget:
        run_seed = seed if r == 0 else seed * 1000 + r
        if used < first or used >= elite_end:
            part_end = first if used < first else budget
            run_size = PORTFOLIO_RUN if used < first else POPULATION_RUN
            share = min(run_size, part_end - used)
            if part_end - used - share < run_size // 4:
                share = part_end - used  # a short tail joins the last run of its part
        else:
            share = elite_end - used
        if used < first:
            run = (anneal if r % 2 == 0 else ils)(evaluator, share, run_seed, initial=initial)
        elif used < elite_end:
            run = elite_search(evaluator, share, seed, [res.order for res in results])
        else:
            run = population_anneal(
                evaluator,
                share,
                run_seed,
                initial=initial,
                chains=PORTFOLIO_CHAINS[population_runs % len(PORTFOLIO_CHAINS)],
            )
            population_runs += 1
        used += run.evaluations
        results.append(run)
        if best is None or run.peak < best.peak:  # ties keep the earlier run
            best = run
        if run.evaluations < share:  # nothing to search (one worker, or all tasks at once)
            break
        if run.method != "elite":
            r += 1
    assert best is not None
    return SearchResult(best.order, best.peak, used, time.perf_counter() - t0, f"portfolio:{best.method}", seed)


def multistart(
    evaluator: PeakEvaluator,
    budget: int,
    seed: int = 0,
    initial: Sequence[int] | None = None,
    stop: Callable[[tuple[int, ...], int], bool] | None = None,
    checkpoints: Sequence[int] = (),
) -> SearchResult:
    """Many short annealing runs in compiled code (:mod:`chromosched.static.multistart_annealing`),
    exactly ``budget`` evaluations, list model; raises when the C code cannot be built here. With
    ``stop`` (best order, best peak in ticks -> end here?), asked at each of ``checkpoints``
    (evaluation counts), it may end sooner; the result then counts the evaluations spent."""
    _check_budget(budget)
    if evaluator.model != "list":
        raise ChromoschedError("the multistart search is for the list model (waves: anneal)")
    start = _start(evaluator, initial)
    res = multistart_annealing.multistart(
        evaluator.mem, evaluator.dur, evaluator.workers, start, budget, seed, stop=stop, checkpoints=checkpoints
    )
    if res is None:
        raise ChromoschedError(
            "the multistart search needs a C compiler (cc or $CC) or has too many tasks "
            f"(at most {multistart_annealing.MAX_TASKS}); use the portfolio"
        )
    evaluator.evaluations += res.evaluations
    return SearchResult(res.order, evaluator.to_units(res.peak_ticks), res.evaluations, res.seconds, "multistart", seed)


def list_default(evaluator: PeakEvaluator) -> Callable[..., SearchResult]:
    """The list model's default search: the multistart annealing where its C code builds and the task
    count allows, else the pure-Python portfolio."""
    return multistart if multistart_annealing.applies(evaluator.n) else portfolio


def search(
    evaluator: PeakEvaluator, method: str, budget: int, seed: int = 0, initial: Sequence[int] | None = None
) -> SearchResult:
    """Run ``method`` (see ``METHODS``) with ``budget`` peak evaluations."""
    if method == "multistart":
        return multistart(evaluator, budget, seed, initial=initial)
    if method == "portfolio":
        return portfolio(evaluator, budget, seed, initial=initial)
    if method == "ils":
        return ils(evaluator, budget, seed, initial=initial)
    if method == "elite":
        return elite_search(evaluator, budget, seed, [_start(evaluator, initial)])
    if method == "population":
        return population_anneal(evaluator, budget, seed, initial=initial)
    if method == "anneal":
        return anneal(evaluator, budget, seed, initial=initial)
    if method == "hill_climb":
        return hill_climb(evaluator, budget, seed, initial=initial)
    raise ChromoschedError(f"unknown search method '{method}' (known: {', '.join(METHODS)})")
