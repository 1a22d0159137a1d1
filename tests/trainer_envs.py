"""Virtual environments for the trainers' libraries that cannot share the project's pinned
environment (OLMo-core wants rich<14 and filelock<4, mosaicml-streaming numpy<2.2; LitData,
torchtitan and datatrove would pull torchvision or other torch builds).

Each is ``python -m venv --system-site-packages`` (so it reuses the installed torch and the
project's other packages) with the versions below installed on top, built once per machine
under ``~/.cache/chameleon-mix/venvs/<name>-<hash of this spec>`` (``$CHAMELEON_MIX_CACHE``
or ``$XDG_CACHE_HOME`` move it) behind a file lock, so parallel test runs build it once and
an interrupted build is redone. The versions are pinned here and nowhere else.

The tests run each trainer's check (``tests/trainer_checks/``) in its environment as a
subprocess, with the project's ``src`` on ``PYTHONPATH``, and read its JSON output.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHECKS = Path(__file__).with_name("trainer_checks")


@dataclass(frozen=True)
class TrainerEnv:
    packages: tuple[str, ...]
    # True: pip resolves their dependencies (held to the installed torch); False: exactly these
    # (their declared dependencies would pull torchvision, another numpy or cloud SDKs that
    # the code read here never imports).
    resolve: bool = False
    # Modules written into the environment in place of a package that cannot load here.
    stubs: dict[str, str] = field(default_factory=dict)


# mosaicml-streaming imports torchvision at `import streaming` for its image datasets only;
# the torchvision wheels on PyPI are CUDA builds whose operators fail to load with the CPU
# torch installed here, so the environment gets the two names streaming's import touches.
TORCHVISION_STUB = {
    "torchvision/__init__.py": '"""Stand-in: streaming\'s image datasets only (tests)."""\n',
    "torchvision/datasets/__init__.py": "from torch.utils.data import Dataset as VisionDataset\n",
    "torchvision/transforms/__init__.py": "",
    "torchvision/transforms/functional.py": (
        "def to_tensor(pic):\n    raise NotImplementedError('torchvision stand-in (tests)')\n"
    ),
}

ENVS = {
    "olmo_core": TrainerEnv(("ai2-olmo-core==3.0.0", "rich==13.9.4"), resolve=True),
    "litdata": TrainerEnv(("litdata==0.2.76", "lightning-utilities==0.15.3")),
    "streaming": TrainerEnv(
        (
            "mosaicml-streaming==0.13.0",
            "numpy==2.1.3",
            "brotli==1.2.1",
            "python-snappy==0.7.3",
            "cramjam==2.14.0",
            "zstd==1.5.7.2",
            "catalogue==2.0.10",
        ),
        stubs=TORCHVISION_STUB,
    ),
    "torchtitan": TrainerEnv(
        (
            "torchtitan==0.3.0",
            "torchdata==0.11.0",
            "tyro==1.0.17",
            "docstring-parser==0.18.0",
            "typeguard==4.6.1",
        )
    ),
    "datatrove": TrainerEnv(("datatrove==0.10.1", "loguru==0.7.3", "humanize==4.15.0")),
}


def cache_dir() -> Path:
    if os.environ.get("CHAMELEON_MIX_CACHE"):
        return Path(os.environ["CHAMELEON_MIX_CACHE"]) / "venvs"
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "chameleon-mix" / "venvs"


def env_path(name: str) -> Path:
    spec = ENVS[name]
    key = json.dumps([sys.executable, sys.version, spec.packages, spec.resolve, spec.stubs])
    return cache_dir() / f"{name}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"


def trainer_python(name: str) -> Path:
    """The python of trainer environment ``name``, built first if this machine has none."""
    import torch

    spec, root = ENVS[name], env_path(name)
    python = root / "bin" / "python"
    root.parent.mkdir(parents=True, exist_ok=True)
    with open(root.with_name(root.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (root / "built.json").is_file():
            return python
        shutil.rmtree(root, ignore_errors=True)
        start = time.monotonic()
        subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", root], check=True)
        # The installed torch, whatever its build, stays the one every package sees.
        constraints = root / "constraints.txt"
        constraints.write_text(f"torch=={torch.__version__.split('+')[0]}\n")
        pip = [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        pip += ["-c", constraints] + ([] if spec.resolve else ["--no-deps"])
        result = subprocess.run([*pip, *spec.packages], capture_output=True, text=True)
        if result.returncode:
            raise RuntimeError(f"pip install {' '.join(spec.packages)} failed:\n{result.stderr}")
        site = Path(
            subprocess.check_output(
                [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                text=True,
            ).strip()
        )
        for relative, text in spec.stubs.items():
            (site / relative).parent.mkdir(parents=True, exist_ok=True)
            (site / relative).write_text(text)
        seconds = round(time.monotonic() - start, 1)
        (root / "built.json").write_text(
            json.dumps({"packages": spec.packages, "seconds": seconds})
        )
        print(f"built the {name} environment in {seconds} s: {root}", file=sys.stderr)
    return python


def run_check(name: str, check: str, *args, cwd: Path | None = None, timeout: int = 600) -> dict:
    """Run ``tests/trainer_checks/<check>`` (or a script path) in environment ``name``; return
    the JSON object its last line of output prints."""
    script = Path(check) if Path(check).is_absolute() else CHECKS / check
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(CHECKS)])}
    env.pop("PYTHONHOME", None)
    result = subprocess.run(
        [trainer_python(name), script, *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=timeout,
    )
    if result.returncode:
        raise AssertionError(
            f"{script.name} failed in the {name} environment ({result.returncode}):\n"
            f"{result.stderr[-6000:]}"
        )
    lines = result.stdout.strip().splitlines()
    return json.loads(lines[-1]) if lines else {}
