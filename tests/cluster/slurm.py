"""A real single-node Slurm cluster in a scratch folder, for the cluster tests and for trying the
Slurm profile by hand on one machine.

    sudo .venv/bin/python tests/cluster/slurm.py up   [--dir /tmp/chromosched-slurm]   # prints SLURM_CONF
    sudo .venv/bin/python tests/cluster/slurm.py down [--dir /tmp/chromosched-slurm]

(``PYTHONPATH=tests python -m cluster.slurm up|down`` is the same.) In pytest, the session fixture
``slurm_cluster`` (import it from ``cluster.slurm``) starts one cluster for the whole session and
skips its tests, with the reason, when Slurm cannot start here.

What runs, all under the scratch folder and stopped by PID: munged (its own socket), MariaDB (its own
datadir, socket and port), slurmdbd (so ``sacct`` works), slurmctld and slurmd. slurm.conf describes
this machine (its cores, its memory), ``select/cons_tres`` with ``CR_Core_Memory`` and cgroup memory
enforcement (``task/cgroup``, ``ConstrainRAMSpace``): a job above its ``--mem`` is OOM-killed. One
GRES ``gpu`` backed by a dummy device file lets ``--gpus`` jobs be scheduled on a machine without one.

Needs root and the Debian packages ``make setup`` installs (slurmctld slurmd slurm-client munge
slurmdbd mariadb-server). Nothing is installed here. Machine-wide traces, all removed by ``down``:
``/etc/slurm/slurm.conf`` (a symlink: Snakemake's jobstep plugin strips ``SLURM_CONF`` inside jobs)
and ``slurm_localhost`` folders under ``/sys/fs/cgroup/<controller>/``.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

NODE = "localhost"
PARTITION = "chromosched"
CLUSTER = "chromosched"
ETC_CONF = Path("/etc/slurm/slurm.conf")
CGROUP_ROOT = Path("/sys/fs/cgroup")
STATE_FILE = "cluster.json"
BINARIES = (
    "munged",
    "mariadb-install-db",
    "mariadbd",
    "mariadb",
    "slurmdbd",
    "slurmctld",
    "slurmd",
    "sbatch",
    "sacct",
    "squeue",
    "scontrol",
    "sinfo",
    "scancel",
)
# Daemons in start order; stopped in reverse.
DAEMONS = ("munged", "mariadbd", "slurmdbd", "slurmctld", "slurmd")


class SlurmUnavailable(RuntimeError):
    """Slurm cannot run here; the message says why (the tests skip with it)."""


@dataclass
class SlurmCluster:
    """A running cluster: where its files are and the PIDs to stop."""

    root: Path
    cpus: int = 0
    memory_mb: int = 0
    pids: dict[str, int] = field(default_factory=dict)
    linked_etc: bool = False

    @property
    def conf(self) -> Path:
        return self.root / "etc" / "slurm.conf"

    @property
    def partition(self) -> str:
        return PARTITION

    def env(self) -> dict[str, str]:
        """The environment for Slurm's client commands (and Snakemake submitting to this cluster)."""
        return dict(os.environ, SLURM_CONF=str(self.conf))

    def run(self, *cmd: str, check: bool = True, timeout: float = 30) -> str:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=self.env(), timeout=timeout)
        if check and proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip()}")
        return proc.stdout

    def save(self) -> None:
        state = {
            "root": str(self.root),
            "cpus": self.cpus,
            "memory_mb": self.memory_mb,
            "pids": self.pids,
            "linked_etc": self.linked_etc,
        }
        tmp = self.root / (STATE_FILE + ".tmp")
        tmp.write_text(json.dumps(state, indent=1))
        os.replace(tmp, self.root / STATE_FILE)

    @classmethod
    def load(cls, root: Path) -> SlurmCluster:
        state = json.loads((Path(root) / STATE_FILE).read_text())
        return cls(
            Path(state["root"]),
            state["cpus"],
            state["memory_mb"],
            {k: int(v) for k, v in state["pids"].items()},
            state["linked_etc"],
        )


# -- start ------------------------------------------------------------------------------------------
def start(root: Path | None = None, timeout: float = 120) -> SlurmCluster:
    """Start a cluster under ``root`` (a fresh temporary folder by default) and wait until its node
    is idle. Raises :class:`SlurmUnavailable` (after cleaning up) when it cannot."""
    _check_can_run()
    root = Path(root) if root else Path(tempfile.mkdtemp(prefix="chromosched-slurm-"))
    if (root / STATE_FILE).exists():
        raise SlurmUnavailable(f"{root} already holds a cluster ({root / STATE_FILE}); run `down` first")
    cluster = SlurmCluster(root.resolve(), cpus=os.cpu_count() or 1, memory_mb=_node_memory_mb())
    try:
        _start(cluster, timeout)
    except BaseException as err:  # also Ctrl-C: leave nothing behind
        stop(cluster)
        if isinstance(err, SlurmUnavailable):
            raise
        if isinstance(err, (KeyboardInterrupt, SystemExit)):
            raise
        raise SlurmUnavailable(f"Slurm did not start: {type(err).__name__}: {err}") from err
    return cluster


def _check_can_run() -> None:
    if os.name != "posix" or not hasattr(os, "geteuid"):
        raise SlurmUnavailable("needs Linux")
    if os.geteuid() != 0:
        raise SlurmUnavailable("needs root (slurmd runs jobs as root and writes cgroups)")
    missing = [b for b in BINARIES if not (shutil.which(b) or _sbin(b))]
    if missing:
        raise SlurmUnavailable(f"missing {', '.join(missing)} (make setup installs the Debian packages)")
    memory_cgroup = CGROUP_ROOT / "memory"
    if not (memory_cgroup / "memory.limit_in_bytes").exists() or not os.access(memory_cgroup, os.W_OK):
        raise SlurmUnavailable(f"no writable cgroup v1 memory controller at {memory_cgroup}")
    if ETC_CONF.exists() or ETC_CONF.is_symlink():
        if not _is_our_stale_link(ETC_CONF):
            raise SlurmUnavailable(
                f"{ETC_CONF} exists and is not a stale chromosched link: a real Slurm is configured here"
            )
    if (memory_cgroup / f"slurm_{NODE}").exists() and _cgroup_pids(memory_cgroup / f"slurm_{NODE}"):
        raise SlurmUnavailable(f"{memory_cgroup / f'slurm_{NODE}'} holds processes: another Slurm runs here")


def _sbin(name: str) -> str | None:
    for folder in ("/usr/sbin", "/sbin"):
        path = Path(folder) / name
        if path.is_file() and os.access(path, os.X_OK):
            return str(path)
    return None


def _bin(name: str) -> str:
    return shutil.which(name) or _sbin(name) or name


def _is_our_stale_link(path: Path) -> bool:
    """A symlink a crashed earlier run left (its target folder holds our state file, no live daemons)."""
    if not path.is_symlink():
        return False
    target = Path(os.readlink(path))
    state = target.parent.parent / STATE_FILE
    if not target.exists():
        return True
    if not state.exists():
        return False
    try:
        old = SlurmCluster.load(state.parent)
    except (OSError, ValueError, KeyError):
        return False
    return not any(_alive(pid) for pid in old.pids.values())


def _node_memory_mb() -> int:
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemTotal:"):
                # A little below the total: slurmd drains a node that reports less than RealMemory.
                return int(int(line.split()[1]) / 1024 * 0.95)
    raise SlurmUnavailable("cannot read MemTotal from /proc/meminfo")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(cluster: SlurmCluster, timeout: float) -> None:
    root = cluster.root
    for sub in ("etc", "munge", "mysql", "log", "run", "state", "spool", "dev"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    os.chmod(root, 0o755)
    cluster.save()
    ports = {name: _free_port() for name in ("mariadb", "slurmdbd", "slurmctld", "slurmd")}
    munge_socket = root / "munge" / "munge.socket.2"
    db_password = secrets.token_hex(12)

    # munge: a fresh key (1024 random bytes, mode 400) and its own socket; the folder must be 0711.
    os.chmod(root / "munge", 0o711)
    key = root / "munge" / "munge.key"
    key.write_bytes(secrets.token_bytes(1024))
    os.chmod(key, 0o400)
    _spawn(
        cluster,
        "munged",
        [
            _bin("munged"),
            "--foreground",
            "--force",
            f"--socket={munge_socket}",
            f"--key-file={key}",
            f"--pid-file={root / 'run' / 'munged.pid'}",
            f"--log-file={root / 'log' / 'munged.log'}",
            f"--seed-file={root / 'munge' / 'seed'}",
        ],
    )
    _wait(lambda: munge_socket.exists(), 15, "munged did not create its socket", cluster, "munged")

    # MariaDB for slurmdbd: own datadir, socket and port; the slurm user at both 127.0.0.1 and localhost.
    datadir, db_socket = root / "mysql", root / "run" / "mysqld.sock"
    _check_call(
        [
            _bin("mariadb-install-db"),
            "--no-defaults",
            f"--datadir={datadir}",
            "--user=root",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
        ],
        "mariadb-install-db",
        root,
    )
    _spawn(
        cluster,
        "mariadbd",
        [
            _bin("mariadbd"),
            "--no-defaults",
            f"--datadir={datadir}",
            f"--socket={db_socket}",
            f"--port={ports['mariadb']}",
            "--bind-address=127.0.0.1",
            "--user=root",
            f"--pid-file={root / 'run' / 'mariadbd.pid'}",
            f"--log-error={root / 'log' / 'mariadbd.log'}",
            "--innodb-buffer-pool-size=32M",
            "--innodb-log-file-size=16M",
        ],
    )
    sql = [_bin("mariadb"), "--no-defaults", f"--socket={db_socket}", "-uroot"]
    _wait(
        lambda: subprocess.run(sql + ["-e", "SELECT 1"], capture_output=True).returncode == 0,
        60,
        "MariaDB did not accept connections",
        cluster,
        "mariadbd",
    )
    grants = "".join(
        f"CREATE OR REPLACE USER 'slurm'@'{host}' IDENTIFIED BY '{db_password}';"
        f"GRANT ALL ON slurm_acct_db.* TO 'slurm'@'{host}';"
        for host in ("127.0.0.1", "localhost")
    )
    _check_call(
        sql + ["-e", f"CREATE DATABASE IF NOT EXISTS slurm_acct_db; {grants} FLUSH PRIVILEGES;"], "mariadb", root
    )

    # The GRES "gpu" device: a character device file like /dev/null, so Slurm can count it.
    gpu_device = root / "dev" / "gpu0"
    if not gpu_device.exists():
        os.mknod(gpu_device, 0o666 | 0o020000, os.makedev(1, 3))

    etc = root / "etc"
    (etc / "slurmdbd.conf").write_text(_slurmdbd_conf(root, ports, munge_socket, db_password))
    os.chmod(etc / "slurmdbd.conf", 0o600)  # slurmdbd refuses a readable file holding the password
    (etc / "slurm.conf").write_text(_slurm_conf(cluster, ports, munge_socket))
    (etc / "cgroup.conf").write_text(_CGROUP_CONF)
    (etc / "gres.conf").write_text(f"NodeName={NODE} Name=gpu File={gpu_device}\n")

    _link_etc(cluster)
    env = cluster.env()
    # slurmdbd before slurmctld (slurmctld registers the cluster with it).
    _spawn(cluster, "slurmdbd", [_bin("slurmdbd"), "-D"], env=dict(env, SLURM_CONF=str(etc / "slurm.conf")))
    _wait(lambda: _port_open(ports["slurmdbd"]), 30, "slurmdbd did not listen", cluster, "slurmdbd")
    _spawn(cluster, "slurmctld", [_bin("slurmctld"), "-D", "-i", "-f", str(cluster.conf)], env=env)
    _wait(lambda: _port_open(ports["slurmctld"]), 30, "slurmctld did not listen", cluster, "slurmctld")
    _spawn(cluster, "slurmd", [_bin("slurmd"), "-D", "-f", str(cluster.conf), "-N", NODE], env=env)

    def idle() -> bool:
        out = subprocess.run([_bin("sinfo"), "-h", "-N", "-o", "%T"], capture_output=True, text=True, env=env)
        return out.returncode == 0 and out.stdout.strip() == "idle"

    _wait(idle, timeout, "the node did not become idle", cluster, "slurmd")
    # sacct answers once slurmctld has registered the cluster with slurmdbd.
    _wait(
        lambda: (
            subprocess.run([_bin("sacct"), "-n", "-X", "-S", "now-1hour"], capture_output=True, env=env).returncode == 0
        ),
        60,
        "sacct did not answer (slurmdbd)",
        cluster,
        "slurmdbd",
    )


def _slurmdbd_conf(root: Path, ports: dict, munge_socket: Path, password: str) -> str:
    return f"""# slurmdbd for the chromosched test cluster (generated)
AuthType=auth/munge
AuthInfo=socket={munge_socket}
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort={ports["slurmdbd"]}
SlurmUser=root
PidFile={root / "run" / "slurmdbd.pid"}
LogFile={root / "log" / "slurmdbd.log"}
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort={ports["mariadb"]}
StorageUser=slurm
StoragePass={password}
StorageLoc=slurm_acct_db
"""


def _slurm_conf(cluster: SlurmCluster, ports: dict, munge_socket: Path) -> str:
    root = cluster.root
    return f"""# slurm.conf for the chromosched test cluster (generated): one node, this machine
ClusterName={CLUSTER}
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort={ports["slurmctld"]}
SlurmdPort={ports["slurmd"]}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={munge_socket}
StateSaveLocation={root / "state"}
SlurmdSpoolDir={root / "spool"}
SlurmctldPidFile={root / "run" / "slurmctld.pid"}
SlurmdPidFile={root / "run" / "slurmd.pid"}
SlurmctldLogFile={root / "log" / "slurmctld.log"}
SlurmdLogFile={root / "log" / "slurmd.log"}
# Memory is a consumable resource: --mem reserves it, and the cgroup enforces it.
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ProctrackType=proctrack/cgroup
TaskPlugin=task/cgroup
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=task=1
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort={ports["slurmdbd"]}
AccountingStoragePass={munge_socket}
AccountingStorageTRES=gres/gpu
# Keep --comment (Snakemake writes rule_<rule>_wildcards_<values> there) in the accounting records.
AccountingStoreFlags=job_comment
GresTypes=gpu
MpiDefault=none
# Finished jobs stay visible to squeue for 5 minutes (>= 3x the executor's status interval).
MinJobAge=300
ReturnToService=2
SchedulerType=sched/backfill
NodeName={NODE} NodeAddr=127.0.0.1 CPUs={cluster.cpus} RealMemory={cluster.memory_mb} Gres=gpu:1 State=UNKNOWN
PartitionName={PARTITION} Nodes={NODE} Default=YES MaxTime=INFINITE State=UP
"""


_CGROUP_CONF = """# cgroup v1 memory enforcement: a job above its --mem is OOM-killed (state OUT_OF_MEMORY)
CgroupPlugin=cgroup/v1
CgroupMountpoint=/sys/fs/cgroup
ConstrainRAMSpace=yes
ConstrainSwapSpace=yes
AllowedSwapSpace=0
"""


def _link_etc(cluster: SlurmCluster) -> None:
    """/etc/slurm/slurm.conf -> ours: inside a job the jobstep plugin strips SLURM_CONF, so Slurm's
    commands there find the configuration only at its default path."""
    if ETC_CONF.is_symlink() and _is_our_stale_link(ETC_CONF):
        ETC_CONF.unlink()
    ETC_CONF.parent.mkdir(parents=True, exist_ok=True)
    ETC_CONF.symlink_to(cluster.conf)
    cluster.linked_etc = True
    cluster.save()


def _spawn(cluster: SlurmCluster, name: str, cmd: list[str], env: dict | None = None) -> None:
    log = open(cluster.root / "log" / f"{name}.out", "ab")
    # Its own session: a Ctrl-C in the terminal reaches the tests, not the daemons (stop() ends them).
    proc = subprocess.Popen(
        cmd,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=env or dict(os.environ),
        start_new_session=True,
        cwd=cluster.root,
    )
    log.close()
    cluster.pids[name] = proc.pid
    cluster.save()


def _check_call(cmd: list[str], what: str, root: Path) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=root)
    if proc.returncode != 0:
        raise SlurmUnavailable(f"{what} failed ({proc.returncode}): {(proc.stderr or proc.stdout).strip()[-500:]}")


def _wait(ready, timeout: float, message: str, cluster: SlurmCluster, daemon: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        pid = cluster.pids.get(daemon)
        if pid is not None and not _alive(pid):
            break
        time.sleep(0.5)
    log = cluster.root / "log" / f"{daemon}.out"
    tail = ""
    for path in (log, cluster.root / "log" / f"{daemon}.log"):
        if path.exists() and path.stat().st_size:
            tail = path.read_text(errors="replace").strip().splitlines()[-1][-300:]
    raise SlurmUnavailable(
        f"{message} within {timeout:.0f} s (see {cluster.root / 'log'}){': ' + tail if tail else ''}"
    )


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child of ours counts as gone
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


# -- stop -------------------------------------------------------------------------------------------
def stop(cluster: SlurmCluster) -> list[str]:
    """Cancel jobs, stop the daemons by PID (reverse start order), end job processes left in the
    cluster's cgroups, remove those cgroup folders and the /etc link. Returns what it had to force."""
    forced = []
    env = cluster.env()
    if cluster.pids.get("slurmctld") and _alive(cluster.pids["slurmctld"]):
        subprocess.run(
            [_bin("scancel"), "--full", f"--partition={PARTITION}"], capture_output=True, env=env, timeout=30
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            out = subprocess.run(
                [_bin("squeue"), "-h", "-o", "%i"], capture_output=True, text=True, env=env, timeout=30
            )
            if out.returncode != 0 or not out.stdout.strip():
                break
            time.sleep(0.5)
    for name in reversed(DAEMONS):
        pid = cluster.pids.get(name)
        if pid is not None and not _terminate(pid):
            forced.append(name)
    # slurmstepd and job processes are not the daemons' children: find them by cgroup membership.
    for pid in _cgroup_pids_all():
        if _terminate(pid, grace=2):
            continue
        forced.append(f"pid {pid}")
    _remove_cgroups()
    if ETC_CONF.is_symlink() and Path(os.readlink(ETC_CONF)) == cluster.conf:
        ETC_CONF.unlink()
    state = cluster.root / STATE_FILE
    if state.exists():
        state.unlink()
    return forced


def _terminate(pid: int, grace: float = 15) -> bool:
    """SIGTERM, then SIGKILL after ``grace`` seconds. True when it ended without SIGKILL."""
    if not _alive(pid):
        _reap(pid)
        return True
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return True
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        _reap(pid)
        if not _alive(pid):
            return True
        time.sleep(0.1)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return True
    for _ in range(50):
        _reap(pid)
        if not _alive(pid):
            break
        time.sleep(0.1)
    return False


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _our_cgroup_dirs() -> list[Path]:
    return [d for d in CGROUP_ROOT.glob(f"*/slurm_{NODE}") if d.is_dir()]


def _cgroup_pids(folder: Path) -> set[int]:
    pids = set()
    for procs in folder.rglob("cgroup.procs"):
        try:
            pids.update(int(p) for p in procs.read_text().split())
        except OSError:
            pass
    return pids


def _cgroup_pids_all() -> set[int]:
    pids = set()
    for folder in _our_cgroup_dirs():
        pids |= _cgroup_pids(folder)
    return pids


def _remove_cgroups() -> None:
    for folder in _our_cgroup_dirs():
        for sub in sorted((p for p in folder.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True) + [
            folder
        ]:
            for _ in range(20):  # a cgroup is removable a moment after its last process exits
                try:
                    sub.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.1)


# -- pytest -----------------------------------------------------------------------------------------
try:
    import pytest
except ImportError:  # the command line does not need pytest
    pytest = None

if pytest is not None:

    @pytest.fixture(scope="session")
    def slurm_cluster(tmp_path_factory):
        """One real Slurm cluster for the test session; its tests skip (reason printed) without it."""
        try:
            cluster = start(tmp_path_factory.mktemp("slurm"))
        except SlurmUnavailable as err:
            print(f"\nSlurm tests skipped: {err}", file=sys.stderr)
            pytest.skip(f"Slurm cannot start here: {err}")
        try:
            yield cluster
        finally:
            forced = stop(cluster)
            if forced:
                print(f"\nslurm fixture: had to SIGKILL {', '.join(forced)}", file=sys.stderr)


# -- command line -----------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tests/cluster/slurm.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=("up", "down", "status"))
    parser.add_argument("--dir", default="/tmp/chromosched-slurm", help="scratch folder (default: %(default)s)")
    args = parser.parse_args(argv)
    root = Path(args.dir)
    if args.action == "up":
        try:
            cluster = start(root)
        except SlurmUnavailable as err:
            print(f"slurm: error: {err}", file=sys.stderr)
            return 1
        print(f"Slurm is up: {cluster.cpus} CPUs, {cluster.memory_mb} MB, partition {PARTITION}")
        print(f"export SLURM_CONF={cluster.conf}")
        print(f"stop it with: {sys.executable} {Path(__file__).resolve()} down --dir {root}")
        return 0
    if not (root / STATE_FILE).exists():
        print(f"slurm: error: no cluster in {root} ({STATE_FILE} missing)", file=sys.stderr)
        return 1
    cluster = SlurmCluster.load(root)
    if args.action == "status":
        for name in DAEMONS:
            pid = cluster.pids.get(name)
            print(f"{name:10s} pid {pid}: {'running' if pid and _alive(pid) else 'stopped'}")
        return 0
    forced = stop(cluster)
    print("Slurm is down" + (f" (SIGKILLed: {', '.join(forced)})" if forced else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
