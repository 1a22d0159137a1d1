"""The shipped SLURM profile (profiles/slurm), and the workflow run through a real SLURM cluster.

The cluster test starts slurmctld, slurmd and munged on this machine (root only; the Debian
packages are installed when missing), runs the small demo-like workflow through sbatch with
the shipped profile, and checks that every job really went through SLURM, that the GPU rules
asked for a GPU and the CPU rules did not, that the embedding jobs shared one SLURM job, that a
requeued training job resumed from its checkpoint, and that the outputs equal a local run's.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import slurm_cluster
import yaml
from test_shards import SPLITS, mixed_dataset, mixed_source, partition, shard_files
from test_workflow import DOMAINS, small_config, small_finetune_dataset, write_config

from chameleon_mix.shards import sample_partition

ROOT = Path(__file__).resolve().parents[1]
PROFILE = ROOT / "profiles" / "slurm" / "config.yaml"
# What the test cluster needs on top of the shipped profile, and nothing else.
OVERRIDES = {
    "slurm-status-command": "squeue",  # no accounting database here: sacct would hang
    "slurm-no-account": True,  # no accounts either
    "slurm-init-seconds-before-status-checks": 5,  # poll quickly: the jobs take seconds
    "slurm-keep-successful-logs": True,  # keep every job's SLURM log to check
}
GPU_RULES = (
    "train_proxy",
    "embed_domain",
    "train_base",
    "finetune",
    "perplexity",
    "downstream",
    "doremi_reference",
    "train_reweighted_proxy",
    "regmix_run",
)
CPU_RULES = (
    "collect_corpus",
    "partition_source",
    "sample_shards",
    "train_tokenizer",
    "tokenize_domain",
    "local_tasks",
)
SUBMITTED = re.compile(r"Job (\S+) has been submitted with SLURM jobid (\d+) \(log: (\S+)\)\.")
TARGET = "results/small/weights.json"


def shipped_profile() -> dict:
    return yaml.safe_load(PROFILE.read_text())


# --- the profile itself (no cluster needed) ------------------------------------------------
def test_every_profile_entry_is_commented():
    lines = PROFILE.read_text().splitlines()
    for i, line in enumerate(lines):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        above = lines[i - 1].strip() if i else ""
        assert " # " in line or above.startswith("#"), f"line {i + 1} has no comment: {line!r}"


def test_gpu_rules_ask_for_a_gpu_and_cpu_rules_stay_on_cpu():
    profile = shipped_profile()
    assert profile["executor"] == "slurm"
    per_rule = profile["set-resources"]
    default_partition = profile["default-resources"]["slurm_partition"]
    for rule in GPU_RULES:
        res = per_rule[rule]
        assert res["gpu"] >= 1 and res["cpus_per_gpu"] >= 1, rule
        assert res["mem_mb"] > 0 and res["slurm_partition"] != default_partition, rule
    for rule in CPU_RULES:
        assert "gpu" not in per_rule.get(rule, {}), rule


def test_embedding_groups_cannot_outgrow_a_node():
    """A group asks for the sum of its parallel jobs: one slot per group runs them in turn."""
    profile = shipped_profile()
    group = profile["groups"]["embed_domain"]
    assert profile["group-components"][group] > 1
    assert profile["set-resources"]["embed_domain"]["group_slots"] == 1
    assert profile["resources"]["group_slots"] == 1
    assert profile["set-resource-scopes"]["group_slots"] == "local"


def test_profile_gives_every_planned_gpu_job_a_gpu(tmp_path):
    """A dry run of the whole comparison with the shipped profile: the names in the profile
    are the workflow's rules, and only the GPU rules land on the GPU partition with a GPU."""
    extra = {"small-ft": small_finetune_dataset(), "mixed": mixed_dataset(["web", "code"])}
    write_config(tmp_path, small_config(DOMAINS, extra))
    mixed_source(tmp_path / "data")  # 4 files: 4 partition jobs
    run = subprocess.run(
        [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile")]
        + ["--directory", str(tmp_path), "--profile", str(PROFILE.parent), "-n"]
        + ["results/small/report/comparison.md", "results/small-ft/report/comparison.md"]
        # DoReMi's reference, which this config does not need (its proxy serves), is a GPU rule.
        + ["results/small/doremi/reference/train_log.json", "results/mixed/shards/web/stats.json"],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    planned: dict[str, list[dict[str, str]]] = {}
    for block in re.split(r"\n(?=\s*(?:local)?rule \w+:)", run.stdout):
        head = re.match(r"\s*(?:local)?rule (\w+):", block)
        resources = re.search(r"resources: (.*)", block)
        if head and resources:
            pairs = (item.split("=", 1) for item in resources.group(1).split(", "))
            planned.setdefault(head.group(1), []).append(dict(pairs))
    assert set(GPU_RULES) <= planned.keys(), sorted(planned)
    assert len(planned["partition_source"]) == 4
    for rule, jobs in planned.items():
        for res in jobs:
            gpu = rule in GPU_RULES
            assert (res.get("gpu", "0") != "0") == gpu, (rule, res)
            assert res["slurm_partition"] == ("gpu" if gpu else "cpu"), (rule, res)
            assert ("cpus_per_gpu" in res) == gpu and "runtime" in res and "mem_mb" in res


# --- the workflow through a real cluster -------------------------------------------------
@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    reason = slurm_cluster.unavailable_reason() or slurm_cluster.install()
    if reason:
        pytest.skip(reason)
    if importlib.util.find_spec("snakemake_executor_plugin_slurm") is None:
        pytest.fail("snakemake-executor-plugin-slurm is missing: pip install -e '.[test]'")
    with slurm_cluster.SlurmCluster(tmp_path_factory.mktemp("slurm")) as running:
        yield running


def write_test_profile(directory: Path) -> Path:
    """The shipped profile with OVERRIDES on top: what runs here is what users get."""
    directory.mkdir(parents=True, exist_ok=True)
    profile = {**shipped_profile(), **OVERRIDES}
    (directory / "config.yaml").write_text(yaml.safe_dump(profile, sort_keys=False))
    return directory


def start_snakemake(workdir: Path, log: Path, *args: str, limit: int) -> subprocess.Popen:
    # Snakemake ignores SIGTERM while jobs run: `timeout -k` follows up with SIGKILL.
    command = ["timeout", "-k", "10", str(limit), sys.executable, "-m", "snakemake"]
    command += ["--snakefile", str(ROOT / "Snakefile"), "--directory", str(workdir), *args]
    with open(log, "w") as out:
        return subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, cwd=workdir
        )


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)  # timeout and snakemake; SLURM jobs get scancel
        process.wait()


def finish(process: subprocess.Popen, log: Path, limit: int, tick=None) -> str:
    deadline = time.monotonic() + limit + 30
    try:
        while process.poll() is None and time.monotonic() < deadline:
            if tick is not None:
                tick()
            time.sleep(0.3)
    finally:
        stop(process)
    out = log.read_text(errors="replace")
    assert process.returncode == 0, f"{' '.join(map(str, process.args))}\n{out[-6000:]}"
    return out


class Watch:
    """Requeue the proxy's training job once it runs, as a preemption would; fail fast when a
    job can never start (a request larger than the node stays pending forever)."""

    def __init__(self, cluster: slurm_cluster.SlurmCluster):
        self.cluster = cluster
        self.requeued: str | None = None
        self.requeued_at = 0.0
        self.released = False
        self.pending_since: dict[str, float] = {}

    def __call__(self) -> None:
        for job in self.cluster.queue():
            if job["comment"].startswith("rule_train_proxy"):
                if self.requeued is None and job["state"] == "RUNNING":
                    subprocess.run(["scontrol", "requeue", job["id"]], check=True)
                    self.requeued, self.requeued_at = job["id"], time.monotonic()
                elif job["id"] == self.requeued and job["state"] == "PENDING":
                    # SLURM holds a requeued job for 2 minutes; released at once, it restarts
                    # in the second its old credential was revoked in, and slurmd refuses it
                    # ("Job credential revoked"): wait past that second.
                    if not self.released and time.monotonic() - self.requeued_at > 2:
                        subprocess.run(
                            ["scontrol", "update", f"JobId={job['id']}", "StartTime=now"],
                            check=True,
                        )
                        self.released = True
                    continue
            if job["state"] == "PENDING":
                since = self.pending_since.setdefault(job["id"], time.monotonic())
                assert time.monotonic() - since < 90, (
                    f"job {job} cannot start:\n{self.cluster.job(job['id'])}"
                )


def submissions(out: str) -> dict[str, list[tuple[str, Path]]]:
    """Rule (or group) -> [(SLURM job id, SLURM log)] from Snakemake's output."""
    found: dict[str, list[tuple[str, Path]]] = {}
    for _, job_id, log in SUBMITTED.findall(out):
        parts = Path(log).parts  # .../slurm_logs/rule_<rule>/<wildcards>/<id>.log or group_...
        kind = parts[parts.index("slurm_logs") + 1]
        found.setdefault(kind.removeprefix("rule_"), []).append((job_id, Path(log)))
    return found


def sbatch_lines(out: str, comment: str) -> list[str]:
    return [
        line.split("sbatch call: ", 1)[1].split(" --wrap=")[0]
        for line in out.splitlines()
        if "sbatch call: " in line and f"--comment {comment}" in line
    ]


def same_bytes(a: Path, b: Path, pattern: str) -> list[str]:
    files = sorted(p.relative_to(a) for p in a.glob(pattern) if p.is_file())
    assert files, f"nothing matches {pattern} under {a}"
    return [str(f) for f in files if (a / f).read_bytes() != (b / f).read_bytes()]


@pytest.mark.slow
def test_workflow_through_slurm_equals_local_run(cluster, tmp_path, monkeypatch):
    started = time.monotonic()
    local, remote = tmp_path / "local", tmp_path / "slurm"
    # Also a dataset of a mixed source of 4 files: its 4 partition jobs go to SLURM side by side.
    config = small_config(DOMAINS, {"mixed": mixed_dataset(["web", "code"])})
    config["proxies"]["tiny"]["seeds"] = [0]  # one proxy job, requeued below
    for workdir in (local, remote):
        workdir.mkdir()
        write_config(workdir, config)
    mixed_source(remote / "data")
    profile = ["--profile", str(write_test_profile(tmp_path / "profile")), "--verbose"]

    # The local reference run and the SLURM run up to the tokenizer, side by side.
    local_run = start_snakemake(local, tmp_path / "local.out", "--cores", "2", TARGET, limit=400)
    tokenizer = "results/proxies/tiny/tokenizer"
    mixed = "results/mixed/shards/web/stats.json"
    phase1 = start_snakemake(remote, tmp_path / "slurm1.out", *profile, tokenizer, mixed, limit=400)
    checkpoint = "results/proxies/tiny/seed-0/checkpoints/step-6"  # written atomically
    try:
        out = finish(phase1, tmp_path / "slurm1.out", 400)
        assert not same_bytes(local, remote, "results/small/shards/**/*.parquet")
        while not (local / checkpoint).exists() and local_run.poll() is None:
            time.sleep(0.3)
        assert not same_bytes(local, remote, f"{tokenizer}/*")

        # As if an earlier attempt had been preempted after step 6: the proxy job must resume
        # there (and is itself requeued while it runs, see Watch), then end as the local run.
        shutil.copytree(local / checkpoint, remote / checkpoint)
        watch = Watch(cluster)
        phase2 = start_snakemake(remote, tmp_path / "slurm2.out", *profile, TARGET, limit=400)
        out += finish(phase2, tmp_path / "slurm2.out", 400, tick=watch)
        finish(local_run, tmp_path / "local.out", 400)
    finally:
        stop(local_run)

    # Every job went through sbatch and completed under SLURM, with its own SLURM log.
    jobs = submissions(out)
    for rule in ("collect_corpus", "sample_shards", "train_tokenizer", "train_proxy"):
        assert rule in jobs, f"{rule} was not submitted to SLURM:\n{out[-3000:]}"
    assert len(jobs["partition_source"]) == 4, jobs  # one SLURM job per source file
    groups = [name for name in jobs if name.startswith("group_")]
    assert len(groups) == 1 and len(jobs[groups[0]]) == 1, jobs  # 3 embeddings, 1 SLURM job
    info = {}
    for name, submitted in jobs.items():
        for job_id, log in submitted:
            info[name] = cluster.job(job_id)
            assert info[name]["JobState"] == "COMPLETED", (name, info[name])
            assert log.is_file(), f"no SLURM log {log}"
            if name == "partition_source":
                assert info[name]["Partition"] == "cpu", info[name]

    # GPU rules asked SLURM for a GPU on the GPU partition, CPU rules for none.
    for name in ("train_proxy", groups[0]):
        assert info[name]["Partition"] == "gpu", info[name]
        assert re.search(r"gres[:/]gpu:1\b", info[name].get("TresPerJob", "")), info[name]
    for name in ("collect_corpus", "sample_shards", "train_tokenizer"):
        assert info[name]["Partition"] == "cpu", info[name]
        assert "gpu" not in info[name].get("TresPerJob", ""), info[name]
    gpu_line = sbatch_lines(out, "rule_train_proxy_wildcards_tiny")[0]
    cpu_line = sbatch_lines(out, "rule_sample_shards_wildcards_small_licenses")[0]
    assert "--gpus=1" in gpu_line and "--cpus-per-gpu=8" in gpu_line and "-p gpu" in gpu_line
    assert "--gpus" not in cpu_line and "-p cpu" in cpu_line
    # The group of 3 embeddings asked for what one asks (one GPU, 4 CPUs), 3 x 30 minutes.
    assert info[groups[0]]["NumCPUs"] == "4" and info[groups[0]]["TimeLimit"] == "01:30:00"

    # The training job was requeued mid-run, resumed from the checkpoint, and SLURM ran it twice.
    assert watch.requeued and info["train_proxy"]["Restarts"] == "1", info["train_proxy"]
    train_log = json.loads((remote / "results/proxies/tiny/seed-0/train_log.json").read_text())
    assert train_log["resumed_from_step"] >= 6

    # The partition jobs' merge equals a single pass over the mixed source.
    monkeypatch.chdir(remote)  # where snakemake ran: the rows name the files as it did
    parts = partition({"files": "data/*"}, tmp_path / "one-pass", 4)
    sample_partition("web", "web", parts, SPLITS, tmp_path / "one-pass" / "web")
    assert shard_files(remote / "results/mixed/shards/web") == shard_files(
        tmp_path / "one-pass/web"
    )

    # Same results as the local run.
    assert not same_bytes(local, remote, "results/proxies/tiny/seed-0/model/model.safetensors")
    assert not same_bytes(local, remote, "results/small/embeddings/seed-0/final/*.npy")
    weights = [json.loads((w / TARGET).read_text())["weights"] for w in (local, remote)]
    assert weights[0].keys() == weights[1].keys() == set(DOMAINS)
    for domain in DOMAINS:
        assert abs(weights[0][domain] - weights[1][domain]) < 1e-6
    print(f"\nSLURM test: {time.monotonic() - started:.0f} s\nGPU: {gpu_line}\nCPU: {cpu_line}")


def test_profile_plans_torchrun_for_a_multi_gpu_train_base(tmp_path):
    """The shipped profile with 4 GPUs for train_base: the base model's job runs torchrun, a
    process per GPU; the proxy's job, with one GPU, runs plain python (both snakemake's own)."""
    profile = shipped_profile()
    profile["set-resources"]["train_base"]["gpu"] = 4
    (tmp_path / "profile").mkdir()
    (tmp_path / "profile" / "config.yaml").write_text(yaml.safe_dump(profile))
    write_config(tmp_path, small_config(DOMAINS))
    targets = [
        "results/small/base/uniform/seed-0/train_log.json",
        "results/proxies/tiny/seed-0/train_log.json",
    ]
    run = subprocess.run(
        [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"), *targets]
        + ["--directory", str(tmp_path), "--profile", str(tmp_path / "profile"), "-n"],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    commands = {}
    for block in re.split(r"\n(?=\s*(?:local)?rule \w+:)", run.stdout):
        head = re.match(r"\s*(?:local)?rule (\w+):", block)
        command = re.search(r"Shell command: (.*)", block)
        if head and command:
            commands[head.group(1)] = command.group(1)
    launch = "-m chameleon_mix.launch {} '{{"
    # $PYTHON: snakemake's own interpreter, set where the command runs (launch.shell_prefix)
    assert commands["train_base"].startswith(
        '"$PYTHON" -m torch.distributed.run --standalone --nproc_per_node=4 '
        + launch.format("train_base")
    )
    assert commands["train_proxy"].startswith(f'"$PYTHON" {launch.format("train_proxy")}')
    # The job's threads follow --cores: they are an argument, not part of the compared params.
    assert re.search(r"\.log \d+$", commands["train_base"]), commands["train_base"]
