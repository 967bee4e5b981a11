"""Live memory of the running jobs (local execution): the process trees under this process.

A daemon thread samples every ``interval_s`` the resident memory (RSS) of each child process tree
of the Snakemake process and attributes a tree to the job whose output or log path appears on its
command line (Snakemake runs a local shell job as ``bash -c '<command>'``). It keeps, per job, the
current and the peak RSS; trees it cannot attribute count as ``unattributed``. The scheduler uses it

- as a guard: memory in use = sum over running jobs of max(allocation, sampled RSS) + unattributed
  RSS, i.e. measured total plus the predicted growth of each job towards its allocation;
- to learn early: a job above its allocation says its rule needs more before the job ends;
- as the measurement of jobs that write no benchmark file (the sampled peak).

RSS counts shared pages once per process; sampling misses peaks shorter than the interval.
"""

from __future__ import annotations

import os
import threading
import time

from .job_measurements import Measurement

try:
    import psutil
except ImportError:  # pragma: no cover - psutil is a dependency of Snakemake itself
    psutil = None


class LiveMemory:
    def __init__(self, interval_s: float = 0.2, root_pid: int | None = None):
        self.interval_s = interval_s
        self._root = root_pid or os.getpid()
        self._lock = threading.Lock()
        self._paths: dict[str, list[str]] = {}  # uid -> strings identifying its command line
        self._started: dict[str, float] = {}
        self._current: dict[str, float] = {}  # uid -> MB now
        self._peak: dict[str, float] = {}  # uid -> largest MB seen
        self._samples: dict[str, int] = {}  # uid -> samples taken
        self._first: dict[str, float] = {}  # uid -> its first non-zero sample (MB)
        self._level: dict[str, tuple[float, float, float]] = {}  # uid -> (flat since, its level MB, last sample)
        self.on_sample = None  # called (in the sampler thread) after every sample, when set
        self._unattributed = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.available = psutil is not None

    # -- jobs ---------------------------------------------------------------------------------
    def start(self, uid: str, paths: list[str]) -> None:
        with self._lock:
            self._paths[uid] = [p for p in paths if p]
            self._started[uid] = time.monotonic()
            self._current[uid] = 0.0
            self._peak[uid] = 0.0
            self._samples[uid] = 0
            self._level.pop(uid, None)
            self._first.pop(uid, None)
        if self.available and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="chromosched-live-memory", daemon=True)
            self._thread.start()

    def stop(self, uid: str) -> None:
        with self._lock:
            for d in (self._paths, self._started, self._current, self._peak, self._samples, self._level, self._first):
                d.pop(uid, None)

    def snapshot(self) -> tuple[dict[str, float], float]:
        """({uid: RSS MB now}, unattributed RSS MB) of the jobs started and not yet stopped."""
        with self._lock:
            return dict(self._current), self._unattributed

    def settled(self, uid: str, window_s: float = 1.0, fraction: float = 0.0) -> float | None:
        """The job's peak RSS (MB) once its RSS has stayed within 2 % of one level for at
        least ``window_s`` seconds and at least ``fraction`` of the job's age (a plateau: the need
        is known before the job ends), else None. The age term makes the test scale-free: a job
        that reached its level at once settles soon, one that has been growing for minutes must
        then stay flat for a like share of its run."""
        with self._lock:
            level = self._level.get(uid)
            peak = self._peak.get(uid, 0.0)
            samples = self._samples.get(uid, 0)
            started = self._started.get(uid)
        if peak <= 0 or samples < 3 or level is None or started is None:
            return None
        since, _, last = level
        if last - since < max(window_s, fraction * (last - started)):
            return None
        return peak

    def first_sample(self, uid: str) -> float | None:
        """The job's first non-zero RSS sample (MB): about what its process tree holds starting."""
        with self._lock:
            return self._first.get(uid)

    def measurement(self, uid: str) -> Measurement | None:
        """The sampled peak of a finished job (None when it was never seen)."""
        with self._lock:
            peak = self._peak.get(uid, 0.0)
            started = self._started.get(uid)
        if peak <= 0:
            return None
        runtime = None if started is None else time.monotonic() - started
        return Measurement(peak, runtime, "live_rss")

    def close(self) -> None:
        self._stop.set()

    # -- sampling -----------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.sample()
            except Exception:  # noqa: BLE001 - sampling is best effort; never stop the run
                pass

    def sample(self) -> None:
        """One sample of every child process tree of the root process."""
        try:
            children = psutil.Process(self._root).children()
        except (psutil.Error, OSError):
            return
        with self._lock:
            paths = {uid: list(p) for uid, p in self._paths.items()}
        by_job: dict[str, float] = {uid: 0.0 for uid in paths}
        loose = 0.0
        for child in children:
            try:
                cmd = " ".join(child.cmdline())
                tree = [child] + child.children(recursive=True)
            except (psutil.Error, OSError):
                continue
            mb = 0.0
            for proc in tree:
                try:
                    mb += proc.memory_info().rss / 2**20
                except (psutil.Error, OSError):
                    continue
            # The longest path found wins (results/chr1 is also a prefix of results/chr10/...).
            matches = [(len(p), uid) for uid, ps in paths.items() for p in ps if p in cmd]
            owner = max(matches)[1] if matches else None
            if owner is None:
                loose += mb
            else:
                by_job[owner] += mb
        with self._lock:
            now = time.monotonic()
            for uid, mb in by_job.items():
                if uid in self._current:
                    self._current[uid] = mb
                    self._peak[uid] = max(self._peak.get(uid, 0.0), mb)
                    self._samples[uid] = self._samples.get(uid, 0) + 1
                    if mb > 0 and uid not in self._first:
                        self._first[uid] = mb
                    since, level, _ = self._level.get(uid, (now, mb, now))
                    if abs(mb - level) > _tolerance(level):
                        since, level = now, mb  # a new level: the plateau starts again
                    self._level[uid] = (since, level, now)
            self._unattributed = loose
        if self.on_sample is not None:
            self.on_sample()


def _tolerance(level_mb: float, relative: float = 0.02) -> float:
    """How far (MB) an RSS sample may move from its plateau's level and still be on it."""
    return max(relative * level_mb, 1.0)
