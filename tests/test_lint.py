"""The repository's own style gates: ruff, snakefmt, and snakemake --lint (with the shipped
config and with the workflow test configs under .test/)."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run(*args):
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True)


@pytest.mark.parametrize(
    "command",
    [
        ("ruff", "check", "."),
        ("ruff", "format", "--check", "."),
        ("snakefmt", "--check", "Snakefile", "workflow/rules"),
    ],
    ids=["ruff-check", "ruff-format", "snakefmt"],
)
def test_style(command):
    result = run(sys.executable, "-m", *command)
    assert result.returncode == 0, result.stdout + result.stderr


# The workflow test configs (.test/, the catalog's convention), every one layered on the small
# run as the tests use them: linting parses the Snakefile with them, which validates them
# against the schema, as the catalog's CI lints with `--directory .test` before running there.
TEST_CONFIGS = ROOT / ".test"


@pytest.mark.parametrize("configs", ["shipped", "test"])
def test_snakemake_lint_is_clean(configs, tmp_path):
    args = ["--lint"]
    if configs == "test":
        files = sorted(TEST_CONFIGS.glob("*.yaml"), key=lambda p: p.name != "config-small.yaml")
        assert files[0].name == "config-small.yaml" and len(files) > 1
        args += ["--directory", str(tmp_path), "--configfile", *map(str, files)]
    result = run(sys.executable, "-m", "snakemake", *args)
    assert result.returncode == 0 and "Congratulations" in result.stdout + result.stderr, (
        result.stdout + result.stderr
    )
