"""A throwaway one-node SLURM cluster on this machine: munged, slurmctld and slurmd.

Root only. :func:`install` gets the Debian packages when they are missing (a no-op, in well
under a second, when they are there). :class:`SlurmCluster` writes ``/etc/slurm/slurm.conf``
(the ``srun`` that each job runs inside its allocation reads that path: the executor plugin
drops ``SLURM_CONF`` from its environment), starts the daemons in the foreground as children
of the test and stops them by PID. Job state lives in a temporary directory, so job ids start
at 1 on every start.

The node claims more than this machine has (``SlurmdParameters=config_overrides``): 32 CPUs,
256 GB and one GPU whose device file is ``/dev/null``, so the shipped profile's per-rule GPU,
CPU and memory requests are scheduled unchanged. Nothing is enforced (no cgroups, no
accounting), so jobs share the real cores.
"""

from __future__ import annotations

import os
import pwd
import signal
import subprocess
import time
from pathlib import Path

PACKAGES = ("slurmctld", "slurmd", "slurm-client", "munge")
BINARIES = ("/usr/sbin/slurmctld", "/usr/sbin/slurmd", "/usr/sbin/munged", "/usr/bin/sbatch")
CONF_DIR = Path("/etc/slurm")
MARK = "# written by chameleon-mix tests/slurm_cluster.py; removed when the test cluster stops"
MUNGE_SOCKET = Path("/run/munge/munge.socket.2")
NODE = {"cpus": 32, "memory_mb": 256_000, "gpus": 1}
PID_DIR = Path("/run/chameleon-mix-slurm-test")  # fixed, to find daemons a killed run left
PARTITIONS = ("cpu", "gpu")  # the shipped profile's default and GPU partitions; cpu is default


def unavailable_reason() -> str | None:
    """Why no test cluster can run here, or None."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "starting slurmctld/slurmd/munged needs root"
    if not Path("/usr/bin/apt-get").exists() and not installed():
        return "SLURM is not installed and there is no apt-get to install it"
    for name in ("slurm.conf", "gres.conf"):
        path = CONF_DIR / name
        if path.exists() and MARK not in path.read_text(errors="replace"):
            return f"{path} belongs to a real SLURM setup; not overwriting it"
    return None


def installed() -> bool:
    return all(Path(b).exists() for b in BINARIES)


def install(timeout: float = 240) -> str | None:
    """Install the packages if missing; return why that failed, or None."""
    if installed():
        return None
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    command = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *PACKAGES]
    errors = []
    # A fresh machine may have no package lists yet: update only when installing fails.
    for step in (command, ["apt-get", "update", "-q"], command):
        try:
            run = subprocess.run(step, capture_output=True, text=True, env=env, timeout=timeout)
        except subprocess.TimeoutExpired:
            return f"`{' '.join(step)}` took over {timeout:.0f} s (no package mirror reachable?)"
        if run.returncode == 0 and step is command and installed():
            return None
        if run.returncode != 0:
            errors.append(f"`{' '.join(step)}`: {run.stderr.strip()[-400:]}")
    return "could not install SLURM from apt: " + " | ".join(errors)


def _wait(predicate, timeout: float, what: str, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    tail = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
    raise RuntimeError(f"timed out waiting for {what}\n{tail}")


def _alive(pid: int) -> bool:
    """Running, not a zombie (an orphan's parent here may never reap it)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _quiet(*args: str, timeout: float = 10) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout)


class SlurmCluster:
    """munged (unless one already answers), slurmctld and slurmd for one node, ``localhost``."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.processes: dict[str, subprocess.Popen] = {}
        self.wrote_conf = False

    # --- configuration -------------------------------------------------------------------
    def slurm_conf(self) -> str:
        r = self.root
        return "\n".join(
            [
                MARK,
                "ClusterName=chameleon-test",
                "SlurmctldHost=localhost",
                "SlurmUser=root",
                "AuthType=auth/munge",
                "MpiDefault=none",
                "ProctrackType=proctrack/linuxproc",
                "TaskPlugin=task/none",
                "JobAcctGatherType=jobacct_gather/none",
                "AccountingStorageType=accounting_storage/none",
                "JobCompType=jobcomp/none",
                "SelectType=select/cons_tres",
                "SelectTypeParameters=CR_Core_Memory",
                "SlurmdParameters=config_overrides",
                "ReturnToService=2",
                # finished jobs stay visible to squeue/scontrol for 10 minutes (status checks)
                "MinJobAge=600",
                "SchedulerParameters=sched_interval=2",
                "KillWait=5",  # a requeued or cancelled job's processes get SIGKILL after 5 s
                f"StateSaveLocation={r}/state",
                f"SlurmdSpoolDir={r}/spool",
                f"SlurmctldPidFile={PID_DIR}/slurmctld.pid",
                f"SlurmdPidFile={PID_DIR}/slurmd.pid",
                f"SlurmctldLogFile={r}/slurmctld.log",
                f"SlurmdLogFile={r}/slurmd.log",
                "SlurmctldDebug=info",
                "SlurmdDebug=info",
                "GresTypes=gpu",
                f"NodeName=localhost NodeAddr=127.0.0.1 CPUs={NODE['cpus']} "
                f"RealMemory={NODE['memory_mb']} Gres=gpu:{NODE['gpus']} State=UNKNOWN",
                *(
                    f"PartitionName={p} Nodes=localhost Default={'YES' if i == 0 else 'NO'} "
                    "MaxTime=INFINITE State=UP"
                    for i, p in enumerate(PARTITIONS)
                ),
                "",
            ]
        )

    def write_conf(self) -> None:
        for sub in ("state", "spool"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        CONF_DIR.mkdir(parents=True, exist_ok=True)
        self.wrote_conf = True
        (CONF_DIR / "slurm.conf").write_text(self.slurm_conf())
        (CONF_DIR / "gres.conf").write_text(f"{MARK}\nNodeName=localhost Name=gpu File=/dev/null\n")

    # --- daemons -------------------------------------------------------------------------
    @staticmethod
    def munge_works() -> bool:
        if not MUNGE_SOCKET.exists():
            return False
        try:
            cred = _quiet("munge", "-n")
            return cred.returncode == 0 and (
                subprocess.run(
                    ["unmunge"], input=cred.stdout, capture_output=True, text=True, timeout=10
                ).returncode
                == 0
            )
        except (OSError, subprocess.TimeoutExpired):
            return False

    def _start_munged(self) -> None:
        if self.munge_works():
            return  # the machine's own munged: use it, leave it running
        munge = pwd.getpwnam("munge")
        key = Path("/etc/munge/munge.key")
        if not key.exists():
            subprocess.run(["mungekey", "--create", f"--keyfile={key}"], check=True)
            os.chown(key, munge.pw_uid, munge.pw_gid)
            key.chmod(0o600)
        # The package's own places (the test's temporary directory is root-only).
        for directory in (MUNGE_SOCKET.parent, Path("/var/lib/munge"), Path("/var/log/munge")):
            directory.mkdir(parents=True, exist_ok=True)
            os.chown(directory, munge.pw_uid, munge.pw_gid)
        MUNGE_SOCKET.parent.chmod(0o755)
        self._spawn(
            "munged",
            # --force: a socket file left by a killed run is not a live daemon
            ["/usr/sbin/munged", "--foreground", "--force"],
            user=munge.pw_uid,
            group=munge.pw_gid,
        )
        _wait(self.munge_works, 20, "munged", Path("/var/log/munge/munged.log"))

    def _spawn(self, name: str, command: list[str], **kwargs) -> None:
        log = open(self.root / f"{name}.out", "w")  # noqa: SIM115 (lives as long as the daemon)
        self.processes[name] = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, **kwargs
        )

    def node_state(self) -> str:
        try:
            run = _quiet("sinfo", "-h", "-N", "-o", "%t", timeout=5)
        except subprocess.TimeoutExpired:
            return ""
        return run.stdout.strip() if run.returncode == 0 else ""

    @staticmethod
    def stop_leftovers() -> None:
        """Stop the slurmctld/slurmd that an earlier, killed test run started (by their PID)."""
        for name in ("slurmd", "slurmctld"):
            pid_file = PID_DIR / f"{name}.pid"
            try:
                pid = int(pid_file.read_text().split()[0])
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
            except (OSError, ValueError, IndexError):
                continue
            if Path(cmdline.decode(errors="replace")).name == name:
                os.kill(pid, signal.SIGTERM)
                _wait(lambda pid=pid: not _alive(pid), 20, f"the old {name} to stop")
            pid_file.unlink(missing_ok=True)

    def start(self) -> SlurmCluster:
        self.root.mkdir(parents=True, exist_ok=True)
        PID_DIR.mkdir(parents=True, exist_ok=True)
        self.stop_leftovers()
        self.write_conf()
        self._start_munged()
        self._spawn("slurmctld", ["/usr/sbin/slurmctld", "-D", "-i"])
        _wait(
            lambda: _quiet("scontrol", "ping").returncode == 0,
            30,
            "slurmctld",
            self.root / "slurmctld.log",
        )
        self._spawn("slurmd", ["/usr/sbin/slurmd", "-D", "-N", "localhost"])
        _wait(
            lambda: self.node_state().startswith(("idle", "mix", "alloc")),
            30,
            "the node to come up idle",
            self.root / "slurmd.log",
        )
        return self

    def stop(self) -> None:
        """Cancel every job of this cluster, then stop the daemons started here, by PID."""
        if "slurmctld" in self.processes and self.processes["slurmctld"].poll() is None:
            try:
                _quiet("scancel", "--full", "--partition", ",".join(PARTITIONS))
                _wait(lambda: not _quiet("squeue", "-h", "-t", "R,CG").stdout.strip(), 30, "")
            except (RuntimeError, OSError, subprocess.TimeoutExpired):
                pass
        for name in ("slurmd", "slurmctld", "munged"):
            process = self.processes.pop(name, None)
            if process is None or process.poll() is not None:
                continue
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        if self.wrote_conf:
            for name in ("slurm.conf", "gres.conf"):
                path = CONF_DIR / name
                if path.exists() and MARK in path.read_text(errors="replace"):
                    path.unlink()

    def __enter__(self) -> SlurmCluster:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- queries -------------------------------------------------------------------------
    @staticmethod
    def job(job_id: str | int) -> dict[str, str]:
        """``scontrol show job`` as a dict (finished jobs stay for MinJobAge)."""
        out = _quiet("scontrol", "-o", "show", "job", str(job_id)).stdout
        return dict(
            field.split("=", 1) for field in out.split() if "=" in field and field[0] != "="
        )

    @staticmethod
    def queue() -> list[dict[str, str]]:
        """Jobs known to slurmctld: id, state, reason and comment (the plugin's rule_<name>...)."""
        out = _quiet("squeue", "-h", "-t", "all", "-o", "%i|%T|%r|%k").stdout
        keys = ("id", "state", "reason", "comment")
        return [dict(zip(keys, line.split("|"))) for line in out.splitlines() if line]

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}"
            for p in sorted(self.root.glob("*.log")) + sorted(self.root.glob("*.out"))
        )
