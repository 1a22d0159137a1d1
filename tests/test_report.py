"""The comparison report over training seeds: mean ± sd, and a difference from uniform marked
only where Welch's t-test over the seeds finds it, on inputs written in the workflow's formats."""

import csv
import json
import math

import numpy as np
import pytest

from chameleon_mix.io import write_json
from chameleon_mix.mixtures import uniform_mixture, write_mixture
from chameleon_mix.report import comparison, seed_summary, write_report

DOMAINS = ["a", "b", "c", "d", "e"]
SEEDS = [0, 1, 2]
SPREAD = [0.0, 2.0, -2.0]  # each method's seeds: mean, +2, -2 -> sd 2
SE = math.sqrt(2 * 2.0**2 / 3)  # the standard error of a difference of two such means

# Mean test perplexity per domain. Uniform's is 100 everywhere; chameleon's differences, in
# standard errors t (Welch's test, 4 degrees of freedom, two-sided):
CHAMELEON = {
    "a": 90.0,  # t = 6.1, p = 0.004: better
    "b": 99.0,  # t = 0.6, p = 0.57: within the spread
    "c": 110.0,  # t = 6.1: worse
    "d": 100 - 2.5 * SE,  # t = 2.5, p = 0.067: within (a 2-standard-error rule would mark it)
    "e": 100 - 3.5 * SE,  # t = 3.5, p = 0.025: better
}
VERDICTS = {"a": "better", "b": "within spread", "c": "worse", "d": "within spread", "e": "better"}
# Downstream: an accuracy (higher is better) and bits per byte (lower is better).
TASKS = {
    "uniform": {"copa": (0.50, "acc"), "wiki": (1.00, "bits_per_byte")},
    "chameleon": {"copa": (0.60, "acc"), "wiki": (1.10, "bits_per_byte")},
    "doremi": {"copa": (0.51, "acc"), "wiki": (1.00, "bits_per_byte")},
}
TASK_SPREAD = [0.0, 0.02, -0.02]


def write_run(root, method, seed, perplexity, tasks, shares):
    """One base model's files as the workflow writes them: the training summary's per-domain
    tokens, domain_perplexities' and downstream's JSON."""
    run = root / method / f"seed-{seed}"
    tokens = {d: int(10_000 * shares[d]) for d in DOMAINS}
    write_json(
        run / "train_log.json",
        {
            "tokens_per_domain": tokens,
            "tokens_total": sum(tokens.values()),
            "config": {"seed": seed, "seq_len": 16},
            "model": {"n_layer": 2, "n_head": 4, "n_embd": 128, "n_inner": 512},
        },
    )
    write_json(
        run / "perplexity.json",
        {
            d: {"tokens": 500, "nll": 500 * math.log(p), "perplexity": p}
            for d, p in perplexity.items()
        },
    )
    write_json(
        run / "downstream.json",
        {
            t: {"metric": metric, "score": score, "by_shots": {"0": {metric: score}}}
            for t, (score, metric) in tasks.items()
        },
    )
    return {
        "seed": seed,
        "train_log": run / "train_log.json",
        "perplexity": run / "perplexity.json",
        "downstream": run / "downstream.json",
    }


def write_inputs(root, seeds=SEEDS):
    """Uniform, Chameleon (1e15 FLOPs) and DoReMi (1e16) with one run per seed."""
    means = {
        "uniform": dict.fromkeys(DOMAINS, 100.0),
        "chameleon": CHAMELEON,
        "doremi": {d: 100.5 for d in DOMAINS},
    }
    shares = {"uniform": dict.fromkeys(DOMAINS, 0.2)}
    shares["chameleon"] = shares["doremi"] = {"a": 0.4, "b": 0.3, "c": 0.1, "d": 0.1, "e": 0.1}
    uniform_mixture(root / "mixtures/uniform.json", DOMAINS)
    write_mixture(
        root / "mixtures/chameleon.json", "chameleon", shares["chameleon"], compute_flops=1e15
    )
    write_mixture(root / "mixtures/doremi.json", "doremi", shares["doremi"], compute_flops=1e16)
    methods = {}
    for method, mean in means.items():
        runs = []
        for seed in seeds:
            perplexity = {d: mean[d] + SPREAD[seed] for d in DOMAINS}
            tasks = {
                t: (score + TASK_SPREAD[seed], metric)
                for t, (score, metric) in TASKS[method].items()
            }
            runs.append(write_run(root, method, seed, perplexity, tasks, shares[method]))
        methods[method] = {"mixture": root / f"mixtures/{method}.json", "runs": runs}
    return methods


def write_outputs(root, rows):
    out = {name: root / "report" / name for name in ("c.md", "c.csv", "ppl.png", "w.png")}
    write_report("toy", rows, DOMAINS, *out.values())
    return out


def test_seed_summary_is_the_sample_mean_and_sd():
    summary = seed_summary([421.0, 470.0, 483.0])  # the demo's uniform, seeds 0-2
    assert summary["mean"] == pytest.approx(458.0)
    assert (
        summary["sd"] == pytest.approx(np.std([421, 470, 483], ddof=1)) == pytest.approx(32.7, 0.01)
    )
    assert seed_summary([421.0])["sd"] is None


def test_differences_are_marked_only_beyond_the_seeds_spread(tmp_path):
    rows = comparison(write_inputs(tmp_path), DOMAINS)
    chameleon, uniform, doremi = rows["chameleon"], rows["uniform"], rows["doremi"]
    assert chameleon["seeds"] == SEEDS
    assert chameleon["perplexity"]["a"]["values"] == pytest.approx([90, 92, 88])
    assert chameleon["perplexity"]["a"]["mean"] == pytest.approx(90)
    assert chameleon["perplexity"]["a"]["sd"] == pytest.approx(2)
    averages = [np.mean([CHAMELEON[d] + s for d in DOMAINS]) for s in SPREAD]
    assert chameleon["average_perplexity"]["mean"] == pytest.approx(np.mean(averages))
    assert chameleon["average_perplexity"]["sd"] == pytest.approx(2)
    assert chameleon["versus_uniform"]["perplexity"] == VERDICTS
    assert (chameleon["domains_better"], chameleon["domains_worse"]) == (2, 1)
    assert chameleon["versus_uniform"]["tasks"] == {"copa": "better", "wiki": "worse"}
    assert chameleon["versus_uniform"]["average_accuracy"] == "better"
    # DoReMi: 0.5 worse everywhere with sd 2 (t = 0.3), 0.01 better on copa: nothing marked.
    assert set(doremi["versus_uniform"]["perplexity"].values()) == {"within spread"}
    assert (doremi["domains_better"], doremi["domains_worse"]) == (0, 0)
    assert doremi["versus_uniform"]["tasks"]["copa"] == "within spread"
    assert uniform["versus_uniform"]["perplexity"] == dict.fromkeys(DOMAINS)  # the baseline
    assert chameleon["realised"]["a"]["mean"] == pytest.approx(0.4)
    assert doremi["compute_ratio"] == pytest.approx(10) and uniform["compute_ratio"] == 0

    out = write_outputs(tmp_path, rows)
    text = out["c.md"].read_text()
    assert "Welch's t-test over the seeds gives p < 0.05" in text
    assert "the 3 training seeds 0, 1, 2" in text
    assert "| a | 100.00 ± 2.00 | **90.00 ± 2.00** | 100.50 ± 2.00 |" in text
    assert "| b | 100.00 ± 2.00 | 99.00 ± 2.00 | 100.50 ± 2.00 |" in text
    assert "| c | 100.00 ± 2.00 | _110.00 ± 2.00_ | 100.50 ± 2.00 |" in text
    assert (
        "| Domains significantly better / worse than uniform | – | 2 / 1 of 5 | 0 / 0 of 5 |"
        in text
    )
    assert "| copa (acc) | 0.500 ± 0.020 | **0.600 ± 0.020** | 0.510 ± 0.020 |" in text
    assert "| wiki (bits_per_byte) | 1.000 ± 0.020 | _1.100 ± 0.020_ | 1.000 ± 0.020 |" in text
    assert "| doremi | 1e+16 | 10× |" in text and "| chameleon | 1e+15 | 1× |" in text
    assert "doremi: reference training, proxy training and the reference's forward passes." in text

    with open(out["c.csv"], newline="") as f:
        table = list(csv.DictReader(f))
    cells = {
        (r["section"], r["item"], r["method"], r["seed"], r["statistic"]): r["value"] for r in table
    }
    for seed, value in zip(SEEDS, [90, 92, 88]):
        assert float(cells[("perplexity", "a", "chameleon", str(seed), "value")]) == value
    assert float(cells[("perplexity", "a", "chameleon", "", "mean")]) == 90
    assert float(cells[("perplexity", "a", "chameleon", "", "sd")]) == pytest.approx(2)
    assert cells[("perplexity", "d", "chameleon", "", "versus_uniform")] == "within spread"
    assert cells[("task:acc", "copa", "chameleon", "", "versus_uniform")] == "better"
    assert float(cells[("summary", "compute_ratio", "doremi", "", "value")]) == pytest.approx(10)
    assert float(cells[("summary", "compute_flops", "chameleon", "", "value")]) == 1e15
    assert cells[("summary", "domains_better", "chameleon", "", "value")] == "2"
    assert float(cells[("weight", "a", "chameleon", "", "value")]) == pytest.approx(0.4)
    assert (
        sum(r["section"] == "perplexity" and r["statistic"] == "value" for r in table) == 3 * 5 * 3
    )
    assert out["ppl.png"].stat().st_size > 1000 and out["w.png"].stat().st_size > 1000


def test_one_seed_marks_nothing(tmp_path):
    rows = comparison(write_inputs(tmp_path, seeds=[0]), DOMAINS)
    chameleon = rows["chameleon"]
    assert chameleon["perplexity"]["a"] == {"values": [90.0], "mean": 90.0, "sd": None}
    assert set(chameleon["versus_uniform"]["perplexity"].values()) == {"untested"}
    assert chameleon["domains_better"] is None
    text = write_outputs(tmp_path, rows)["c.md"].read_text()
    assert "One training seed per method: differences between methods are not tested" in text
    assert "**" not in text and "_110" not in text
    assert "| a | 100.00 | 90.00 | 100.50 |" in text
    assert "| Domains significantly better / worse than uniform | – | – | – |" in text


def test_bad_inputs_are_named(tmp_path):
    methods = write_inputs(tmp_path, seeds=[0, 1])
    with pytest.raises(ValueError, match="needs the `uniform` method"):
        comparison({"chameleon": methods["chameleon"]}, DOMAINS)
    with pytest.raises(
        ValueError, match=r"seed 0: .*perplexity.json has no perplexity for \['f'\]"
    ):
        comparison(methods, [*DOMAINS, "f"])
    twice = {**methods, "doremi": {**methods["doremi"], "runs": methods["doremi"]["runs"][:1] * 2}}
    with pytest.raises(
        ValueError, match=r"method 'doremi': needs one run per seed, got seeds \[0, 0\]"
    ):
        comparison(twice, DOMAINS)
    log = json.loads(methods["doremi"]["runs"][1]["train_log"].read_text())
    del log["tokens_per_domain"]["e"]
    write_json(methods["doremi"]["runs"][1]["train_log"], log)
    with pytest.raises(
        ValueError, match=r"seed 1: .*train_log.json trained on no tokens of \['e'\]"
    ):
        comparison(methods, DOMAINS)
    methods["doremi"]["runs"][1]["downstream"].unlink()
    with pytest.raises(FileNotFoundError, match="method 'doremi', seed 1: downstream scores"):
        comparison(methods, DOMAINS)
