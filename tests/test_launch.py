"""The training rules' launcher runs the workflow's own Python, whatever is on the PATH."""

import os
import shlex
import subprocess
import sys

import pytest

from chameleon_mix.launch import launcher, shell_prefix

# The PATH of a shell that finds no python and no torchrun at all.
BARE = {**os.environ, "PATH": "/nonexistent", "OMP_NUM_THREADS": "1"}


def run_bare(command: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["/bin/sh", "-c", shell_prefix() + command],
        env=BARE,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_one_gpu_runs_this_python_without_a_python_on_the_path():
    assert launcher(1) == launcher(0) == '"$PYTHON"'  # no machine's path in the rules' params
    printed = run_bare(f"{launcher(1)} -c 'import sys; print(sys.executable)'")
    assert printed.returncode == 0 and printed.stdout.strip() == sys.executable, printed.stderr
    # The rules' command line: this Python finds the launch module and reports the bad job.
    job = run_bare(f"{launcher(1)} -m chameleon_mix.launch no_such_job '{{}}' job.log 1")
    assert job.returncode == 1
    assert "no training job 'no_such_job'" in job.stderr, job.stderr


def test_several_gpus_run_torchrun_of_this_python(tmp_path):
    assert launcher(2) == '"$PYTHON" -m torch.distributed.run --standalone --nproc_per_node=2'
    script = tmp_path / "rank.py"
    script.write_text(  # a file per rank: the two ranks' prints would interleave on stdout
        "import os, pathlib, sys\n"
        "rank = os.environ['RANK']\n"
        "line = f\"{rank} {os.environ['WORLD_SIZE']} {sys.executable}\"\n"
        f"pathlib.Path({str(tmp_path)!r}, f'rank-{{rank}}.txt').write_text(line)\n"
    )
    ranks = run_bare(f"{launcher(2)} {shlex.quote(str(script))}")
    assert ranks.returncode == 0, ranks.stderr[-3000:]
    lines = [(tmp_path / f"rank-{r}.txt").read_text().split(" ", 2) for r in (0, 1)]
    assert lines == [["0", "2", sys.executable], ["1", "2", sys.executable]]


def test_several_nodes_run_one_torchrun_of_this_python_per_node():
    command = launcher(8, nodes=2)
    assert command.startswith(
        'srun --ntasks-per-node=1 "$PYTHON" -m torch.distributed.run --nnodes=2 '
        "--nproc_per_node=4 --rdzv_id=$SLURM_JOB_ID"
    )
    with pytest.raises(ValueError, match="3 GPUs do not split evenly over 2 nodes"):
        launcher(3, nodes=2)


def test_a_python_in_a_folder_with_spaces_is_quoted(monkeypatch, tmp_path):
    folder = tmp_path / "my env"
    folder.mkdir()
    (folder / "python").symlink_to(sys.executable)
    monkeypatch.setattr(sys, "executable", str(folder / "python"))
    assert shell_prefix() == f"PYTHON={shlex.quote(str(folder / 'python'))}; "
    printed = run_bare(f"{launcher(1)} -c 'print(1 + 1)'")
    assert printed.returncode == 0 and printed.stdout.strip() == "2", printed.stderr
