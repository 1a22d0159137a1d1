"""Run a training rule's workflow script on every rank of a job: the rules' ``shell:`` entry point.

Snakemake's ``script:`` runs one Python process, so the training rules use ``shell:`` instead::

    {launcher} -m chameleon_mix.launch <job> <job JSON> <log> <threads>

where the launcher (:func:`launcher`) is this Python (``$PYTHON``, :func:`shell_prefix`) for a
job with at most one GPU, and torchrun with a process per GPU otherwise; the JSON (:func:`job_json`) holds the job's input and
output files, wildcards and settings. The threads come apart from it: the JSON is a rule
parameter, which Snakemake compares with the last run's, and the threads a job gets follow
``--cores``, which must not rerun it. Each process runs the job's module
(``chameleon_mix.jobs.<job>``) with a ``snakemake`` object of the same shape as the one
``script:`` injects, so the jobs are the same thin adapters as ``workflow/scripts/``. Rank 0 writes the job's log; the other ranks' output is
dropped (a failing rank's error still reaches the console, and torchrun ends the job).
"""

from __future__ import annotations

import importlib.util
import json
import os
import runpy
import shlex
import sys


class Files(list):
    """A job's named files: ``files.tokens`` as well as ``files[0]``, like Snakemake's."""

    def __init__(self, named: dict):
        super().__init__(named.values())
        self.__dict__.update(named)


class Settings:
    def __init__(self, values: dict):
        self.__dict__.update(values)


class Job:
    """The ``snakemake`` object of a workflow script, rebuilt from the job's JSON."""

    def __init__(self, spec: dict, log: str):
        self.input, self.output = Files(spec["input"]), Files(spec["output"])
        self.params, self.wildcards = Settings(spec["params"]), Settings(spec["wildcards"])
        self.threads, self.log = spec["threads"], Files({"log": log})


PYTHON = '"$PYTHON"'  # the interpreter in a rule's command: set by shell_prefix() where it runs


def shell_prefix() -> str:
    """What the workflow puts before every shell command: ``$PYTHON`` is this Python
    (``sys.executable``, the workflow's own environment), not whichever ``python`` or
    ``torchrun`` comes first on the PATH. The rules' params name ``$PYTHON``, never a path,
    so moving the environment reruns nothing."""
    return f"PYTHON={shlex.quote(sys.executable)}; "


def launcher(gpus: int, nodes: int = 1) -> str:
    """The command that starts a job's processes: one per GPU, over ``nodes`` nodes, each
    running ``$PYTHON`` (:func:`shell_prefix`); torchrun is ``$PYTHON -m
    torch.distributed.run``. ``gpus`` counts the job's GPUs on all its nodes. On several nodes
    each node runs one torchrun (``srun``), which meet through the c10d rendezvous on the
    job's first node.
    """
    if gpus <= 1 and nodes <= 1:
        return PYTHON
    if gpus % nodes:
        raise ValueError(f"{gpus} GPUs do not split evenly over {nodes} nodes")
    torchrun = f"{PYTHON} -m torch.distributed.run"
    if nodes == 1:
        return f"{torchrun} --standalone --nproc_per_node={gpus}"
    return (
        f"srun --ntasks-per-node=1 {torchrun} --nnodes={nodes} --nproc_per_node={gpus // nodes} "
        "--rdzv_id=$SLURM_JOB_ID --rdzv_backend=c10d "
        "--rdzv_endpoint=$(scontrol show hostnames $SLURM_JOB_NODELIST | head -n1):29500"
    )


def job_json(input, output, wildcards, settings: dict) -> str:
    """One job's JSON argument (sorted keys, so equal jobs give equal text)."""
    spec = {
        "input": dict(input.items()),
        "output": dict(output.items()) or {"0": output[0]},
        "wildcards": dict(wildcards.items()),
        "params": settings,
    }
    return json.dumps(spec, sort_keys=True)


def main(argv: list[str]) -> None:
    from . import distributed

    if len(argv) != 4:
        sys.exit("usage: python -m chameleon_mix.launch <job> <job JSON> <log> <threads>")
    name, spec, log = argv[0], json.loads(argv[1]), argv[2]
    module = f"chameleon_mix.jobs.{name}"
    if importlib.util.find_spec(module) is None:
        sys.exit(f"no training job {name!r}: chameleon_mix/jobs/ has no such module")
    # The job's CPU threads are shared by the processes on a node.
    spec["threads"] = max(1, int(argv[3]) // int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    rank = int(os.environ.get("RANK", "0"))
    try:
        job = Job(spec, log if rank == 0 else os.devnull)
        runpy.run_module(module, init_globals={"snakemake": job}, run_name="__main__")
    finally:
        distributed.shutdown()


if __name__ == "__main__":
    main(sys.argv[1:])
