"""The comparison report over training seeds: mean ± sd, and a difference from uniform marked
only where Welch's t-test over the seeds finds it, on inputs written in the workflow's formats."""

import csv
import json
import math

import numpy as np
import pytest

from chameleon_mix.io import write_json
from chameleon_mix.mixtures import uniform_mixture, write_mixture
from chameleon_mix.report import comparison, natural_shares, seed_summary, write_report

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


def write_run(root, method, seed, perplexity, tasks, shares, epochs=None):
    """One base model's files as the workflow writes them: the training summary's per-domain
    tokens (and, given ``epochs``, its train splits' tokens and repetition),
    domain_perplexities' and downstream's JSON."""
    run = root / method / f"seed-{seed}"
    tokens = {d: int(10_000 * shares[d]) for d in DOMAINS}
    log = {
        "tokens_per_domain": tokens,
        "tokens_total": sum(tokens.values()),
        "config": {"seed": seed, "seq_len": 16},
        "model": {"n_layer": 2, "n_head": 4, "n_embd": 128, "n_inner": 512},
    }
    if epochs:
        log["train_tokens"] = {d: round(tokens[d] / epochs[d]) for d in DOMAINS}
        log["epochs"] = epochs
    write_json(run / "train_log.json", log)
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


def write_inputs(root, seeds=SEEDS, epochs=None):
    """Uniform, Chameleon (1e15 FLOPs) and DoReMi (1e16) with one run per seed; ``epochs``:
    method -> seed -> each domain's train-split repetition, for the logs that record it."""
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
            repeated = (epochs or {}).get(method, {}).get(seed)
            runs.append(write_run(root, method, seed, perplexity, tasks, shares[method], repeated))
        methods[method] = {"mixture": root / f"mixtures/{method}.json", "runs": runs}
    return methods


def write_outputs(root, rows, **extra):
    out = {name: root / "report" / name for name in ("c.md", "c.csv", "ppl.png", "w.png")}
    write_report("toy", rows, DOMAINS, *out.values(), **extra)
    return out


def csv_cells(path):
    """(section, item, method, seed, statistic) -> value of the report's long CSV."""
    with open(path, newline="") as f:
        return {
            (r["section"], r["item"], r["method"], r["seed"], r["statistic"]): r["value"]
            for r in csv.DictReader(f)
        }


def png_height(path):
    return int.from_bytes(path.read_bytes()[20:24], "big")  # the IHDR chunk's height


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


# The corpus's tokens per domain (natural shares 0.1, 0.2, 0.3, 0.2, 0.2) and a budget of 1e7
# tokens repeating a corpus at most 4 times.
CORPUS_TOKENS = {"a": 1e6, "b": 2e6, "c": 3e6, "d": 2e6, "e": 2e6}
BUDGET = {"tokens": 10_000_000, "max_epochs": 4.0}


def write_corpus_stats(root):
    """corpus_stats.json as the corpus statistics rule writes it."""
    total = sum(CORPUS_TOKENS.values())
    domains = {
        d: {
            "documents": 1200,
            "bytes": int(tokens / 0.35),
            "distinct_documents": 1190,
            "duplicates": 10,
            "exact": False,
            "tokens": tokens,
            "tokens_stderr": 2345.6,
            "tokens_per_byte": 0.35,
            "sampled_documents": 360,
            "source": "toy",
        }
        for d, tokens in CORPUS_TOKENS.items()
    }
    path = root / "corpus_stats.json"
    write_json(
        path,
        {
            "dataset": "toy",
            "tokenizer": "toy-bpe",
            "domains": domains,
            "total_tokens": total,
            "total_documents": 1200 * len(domains),
            "total_bytes": sum(s["bytes"] for s in domains.values()),
            "natural": {d: tokens / total for d, tokens in CORPUS_TOKENS.items()},
        },
    )
    return path


def write_budgeted_mixture(path, method, unconstrained, weights, capped):
    """A mixture planned under :data:`BUDGET`: its weights after capping at max_epochs."""
    epochs = {d: weights[d] * BUDGET["tokens"] / CORPUS_TOKENS[d] for d in DOMAINS}
    write_mixture(
        path,
        method,
        weights,
        unconstrained_weights=unconstrained,
        epochs=epochs,
        capped=capped,
        budget=BUDGET,
    )


def test_weights_beside_natural_shares_and_epochs_under_the_budget(tmp_path):
    methods = write_inputs(tmp_path)
    # Chameleon wants 0.5 of a, 5 epochs of its corpus: capped at 4 epochs (0.4), the rest
    # spread over the other domains in proportion. Uniform repeats a 2x, within the limit.
    write_budgeted_mixture(
        tmp_path / "mixtures/chameleon.json",
        "chameleon",
        {"a": 0.5, "b": 0.2, "c": 0.1, "d": 0.1, "e": 0.1},
        {"a": 0.4, "b": 0.24, "c": 0.12, "d": 0.12, "e": 0.12},
        ["a"],
    )
    write_budgeted_mixture(
        tmp_path / "mixtures/uniform.json", "uniform", *[dict.fromkeys(DOMAINS, 0.2)] * 2, []
    )
    natural = natural_shares(write_corpus_stats(tmp_path), DOMAINS)
    assert natural == pytest.approx({"a": 0.1, "b": 0.2, "c": 0.3, "d": 0.2, "e": 0.2})
    rows = comparison(methods, DOMAINS)
    assert rows["chameleon"]["budget"]["epochs"]["a"] == pytest.approx(4.0)
    assert rows["chameleon"]["budget"]["capped"] == ["a"]
    assert rows["doremi"]["budget"] is None  # planned without a budget

    out = write_outputs(tmp_path, rows, natural=natural, max_epochs=4.0)
    text = out["c.md"].read_text()
    assert "| Domain | uniform | chameleon | doremi | natural (corpus) |" in text
    # weight (realised share) · epochs under the budget, capped from the method's own weight
    assert (
        "| a | 0.200 (0.200) · 2.0× | 0.400 (0.400) · 4.0×, capped from 0.500 "
        "| 0.400 (0.400) | 0.100 |" in text
    )
    assert "| c | 0.200 (0.200) · 0.7× | 0.120 (0.100) · 0.4× | 0.100 (0.100) | 0.300 |" in text
    assert "1e+07 tokens, at most 4 epochs" in text
    assert "share of the corpus's tokens (corpus_stats.json)" in text

    cells = csv_cells(out["c.csv"])
    for d, share in natural.items():
        assert float(cells[("natural_share", d, "", "", "value")]) == pytest.approx(share)
    assert float(cells[("budget_epochs", "a", "chameleon", "", "value")]) == pytest.approx(4.0)
    assert cells[("budget_epochs", "a", "chameleon", "", "capped")] == "True"
    assert cells[("budget_epochs", "b", "chameleon", "", "capped")] == "False"
    assert float(cells[("unconstrained_weight", "a", "chameleon", "", "value")]) == 0.5
    assert float(cells[("summary", "budget_tokens", "chameleon", "", "value")]) == 1e7
    assert ("budget_epochs", "a", "doremi", "", "value") not in cells
    # Two panels: the weights beside the natural shares, and the epochs under the budget.
    assert png_height(out["w.png"]) > 2 * png_height(out["ppl.png"]) * 0.8

    with pytest.raises(ValueError, match=r"have no token share for \['f'\]"):
        natural_shares(tmp_path / "corpus_stats.json", [*DOMAINS, "f"])


def test_a_train_split_repeated_beyond_max_epochs_is_marked_with_its_fix(tmp_path):
    # Chameleon's models cycle a's train split 5x (mean over seeds), b's 3.9x; uniform's 2x
    # everywhere; DoReMi's logs were written before they recorded repetition.
    chameleon = {"a": 5.0, "b": 3.9, "c": 1.0, "d": 1.0, "e": 1.0}
    epochs = {
        "chameleon": {
            seed: {**chameleon, "a": 5.0 + step} for seed, step in zip(SEEDS, [0, 0.2, -0.2])
        },
        "uniform": dict.fromkeys(SEEDS, dict.fromkeys(DOMAINS, 2.0)),
    }
    rows = comparison(write_inputs(tmp_path, epochs=epochs), DOMAINS)
    assert rows["chameleon"]["split_epochs"]["a"]["values"] == pytest.approx([5.0, 5.2, 4.8])
    assert rows["chameleon"]["split_epochs"]["b"]["mean"] == pytest.approx(3.9)
    assert rows["doremi"]["split_epochs"] == dict.fromkeys(DOMAINS)

    out = write_outputs(tmp_path, rows, max_epochs=4.0)
    text = out["c.md"].read_text()
    section = text.split("## Repetition of each domain's train split in these models")[1]
    assert "| a | 2.0× | **5.0×** † | – |" in section
    assert "| b | 2.0× | 3.9× | – |" in section  # below the limit: unmarked
    assert "| Largest repetition | 2.0× (a) | 5.0× (a) | – |" in section
    assert (
        "raise `splits.train` (domain a repeats 5.0× its train split; > max_epochs 4): "
        "chameleon 5.0×." in section
    )
    assert "domain b" not in section and section.count("raise `splits.train`") == 1
    assert "does not record `epochs`" in section

    cells = csv_cells(out["c.csv"])
    assert float(cells[("split_epochs", "a", "chameleon", "1", "value")]) == pytest.approx(5.2)
    assert float(cells[("split_epochs", "a", "chameleon", "", "mean")]) == pytest.approx(5.0)
    assert cells[("split_epochs", "a", "chameleon", "", "exceeds_max_epochs")] == "True"
    assert cells[("split_epochs", "b", "chameleon", "", "exceeds_max_epochs")] == "False"
    assert ("split_epochs", "a", "doremi", "", "mean") not in cells
    assert float(cells[("summary", "max_epochs", "", "", "value")]) == 4.0
    # The second panel shows the repetition (no mixture has a budget).
    assert png_height(out["w.png"]) > 2 * png_height(out["ppl.png"]) * 0.8

    # A looser limit marks nothing.
    loose = write_outputs(tmp_path, rows, max_epochs=6.0)["c.md"].read_text()
    assert "**5.0×**" not in loose and "raise `splits.train`" not in loose


def test_logs_without_repetition_show_a_dash(tmp_path):
    rows = comparison(write_inputs(tmp_path, seeds=[0]), DOMAINS)
    assert rows["chameleon"]["split_epochs"] == dict.fromkeys(DOMAINS)
    text = write_outputs(tmp_path, rows)["c.md"].read_text()
    section = text.split("## Repetition of each domain's train split in these models")[1]
    assert "| a | – | – | – |" in section
    assert "| Largest repetition | – | – | – |" in section
    assert "–: unknown; the model's train_log.json does not record `epochs`" in section


def test_the_targets_test_perplexity_is_compared_with_uniforms(tmp_path):
    methods = write_inputs(tmp_path)
    target = {"uniform": 50.0, "chameleon": 40.0, "doremi": 50.5}
    for method, files in methods.items():
        for run in files["runs"]:
            scores = json.loads(run["perplexity"].read_text())
            value = target[method] + SPREAD[run["seed"]]
            scores["task"] = {"tokens": 100, "nll": 100 * math.log(value), "perplexity": value}
            run["perplexity"].write_text(json.dumps(scores))
    rows = comparison(methods, DOMAINS, target="task")
    assert rows["chameleon"]["target_perplexity"]["mean"] == pytest.approx(40.0)
    assert rows["chameleon"]["versus_uniform"]["target_perplexity"] == "better"
    assert rows["doremi"]["versus_uniform"]["target_perplexity"] == "within spread"
    out = write_outputs(tmp_path, rows, target="task")
    row = next(line for line in out["c.md"].read_text().splitlines() if "Target: task" in line)
    assert "**40.00 ± 2.00**" in row and "50.00 ± 2.00" in row
    cells = csv_cells(out["c.csv"])
    assert cells[("summary", "target_perplexity", "chameleon", "", "mean")] == "40.0"
    for run in methods["doremi"]["runs"]:  # a model not scored on the target is refused
        scores = json.loads(run["perplexity"].read_text())
        del scores["task"]
        run["perplexity"].write_text(json.dumps(scores))
    with pytest.raises(ValueError, match=r"has no perplexity for \['task'\]"):
        comparison(methods, DOMAINS, target="task")
