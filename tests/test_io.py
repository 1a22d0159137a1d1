"""The job helpers: atomic outputs, logs, CPU threads."""

import json
import os
import stat
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from chameleon_mix.io import atomic_path, logged, warn, write_json


def test_failed_write_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError), atomic_path(tmp_path / "out.txt") as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


def test_logged_caps_threads_and_reports_errors(tmp_path, capsys):
    before = torch.get_num_threads()
    try:
        with pytest.raises(ValueError), logged(tmp_path / "job.log", threads=1):
            print("working")
            assert torch.get_num_threads() == 1
            raise ValueError("domain 'x' is broken")
    finally:
        torch.set_num_threads(before)
    log = (tmp_path / "job.log").read_text()
    assert "working" in log and "Traceback" in log
    assert "error: domain 'x' is broken" in capsys.readouterr().err


def test_warnings_reach_the_log_and_the_console(tmp_path, capsys):
    with logged(tmp_path / "job.log"):
        warn("domains 'a' and 'b' look identical")
    expected = "warning: domains 'a' and 'b' look identical\n"
    assert (tmp_path / "job.log").read_text() == expected
    assert capsys.readouterr().err == expected
    warn("outside a job")  # no job: stderr only, once
    assert capsys.readouterr().err == "warning: outside a job\n"


@pytest.fixture(params=[0o022, 0o002], ids=["umask022", "umask002"])
def umask(request):
    previous = os.umask(request.param)
    yield request.param
    os.umask(previous)


def mode(path):
    return stat.S_IMODE(path.stat().st_mode)


def test_outputs_get_the_permissions_the_umask_gives(tmp_path, umask):
    """Teammates on a shared file system read results as they read any file the job makes."""
    write_json(tmp_path / "weights.json", {"a": 1})
    with atomic_path(tmp_path / "shard.parquet") as tmp:
        pq.write_table(pa.table({"text": ["x"]}), tmp)
    with atomic_path(tmp_path / "model", directory=True) as tmp:
        write_json(tmp / "config.json", {"n_layer": 1})
        (tmp / "checkpoints").mkdir()
        (tmp / "weights.bin").write_bytes(b"\0")
    (tmp_path / "plain.txt").write_text("as open() makes it")

    assert mode(tmp_path / "plain.txt") == 0o666 & ~umask
    for name in ("weights.json", "shard.parquet", "model/config.json", "model/weights.bin"):
        assert mode(tmp_path / name) == 0o666 & ~umask, name
    for name in ("model", "model/checkpoints"):
        assert mode(tmp_path / name) == 0o777 & ~umask, name
    assert pq.read_table(tmp_path / "shard.parquet")["text"].to_pylist() == ["x"]
    assert json.loads((tmp_path / "model" / "config.json").read_text()) == {"n_layer": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "model",
        "plain.txt",
        "shard.parquet",
        "weights.json",
    ]


def test_replacing_a_directory_output_keeps_only_the_new_one(tmp_path):
    for version in (1, 2):
        with atomic_path(tmp_path / "model", directory=True) as tmp:
            write_json(tmp / "config.json", {"version": version})
    assert json.loads((tmp_path / "model" / "config.json").read_text()) == {"version": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_a_killed_writers_leftovers_are_removed_by_the_next_write(tmp_path):
    """SIGKILL skips every cleanup: the temporary file and directory stay until the output is
    written again, which removes them (and nothing else hidden beside it)."""
    kill = (
        "import os, signal, sys\n"
        "from chameleon_mix.io import atomic_path\n"
        "with atomic_path(sys.argv[1]) as f, atomic_path(sys.argv[2], directory=True) as d:\n"
        "    f.write_bytes(b'x' * 1000); (d / 'part').write_bytes(b'y')\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    out, folder = tmp_path / "train.bin", tmp_path / "model"
    run = subprocess.run([sys.executable, "-c", kill, str(out), str(folder)])
    assert run.returncode == -9
    (tmp_path / ".train.bin.keep").write_text("not ours")  # not a temporary name of ours
    assert (
        len(list(tmp_path.glob(".train.bin.*"))) == 2 and len(list(tmp_path.glob(".model.*"))) == 1
    )
    with atomic_path(out) as tmp:
        tmp.write_bytes(b"done")
    with atomic_path(folder, directory=True) as tmp:
        (tmp / "weights").write_bytes(b"done")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".train.bin.keep", "model", "train.bin"]
