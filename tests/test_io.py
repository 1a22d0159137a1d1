"""The job helpers: atomic outputs, logs, CPU threads."""

import pytest
import torch

from chameleon_mix.io import atomic_path, logged


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
