"""Evaluate a trained model: per-domain test perplexity and downstream tasks through lm-eval.

Perplexity rule: every test document is scored on its own as ``EOS + tokens``; the sequence is
cut into consecutive windows of at most ``seq_len`` predicted tokens that overlap by one token,
so each token is predicted exactly once, conditioned only on earlier tokens of its own window.
Perplexity is ``exp(total NLL / total predicted tokens)`` over the domain. The documents are read
from the domain's token files (their offsets delimit them); nothing is tokenized here.

Downstream tasks work offline: :func:`build_local_tasks` writes lm-eval task configs over a
dataset's held-out text (multiple-choice continuation, rolling log-likelihood), run through
lm-eval's ``TaskManager(include_path=...)`` like any hub task.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from .io import atomic_path, write_json


def document_windows(ids: Sequence[int], eos: int, seq_len: int) -> list[list[int]]:
    """Windows of ``seq_len + 1`` tokens (inputs + shifted targets) covering ``EOS + ids``."""
    sequence = [eos, *np.asarray(ids, dtype=np.int64).tolist()]
    return [sequence[s : s + seq_len + 1] for s in range(0, max(1, len(sequence) - 1), seq_len)]


def eval_device(device: str | None) -> str:
    """The device models are scored on: the given one, else CUDA when there is a GPU."""
    return device or ("cuda" if torch.cuda.is_available() else "cpu")


CPU_BATCH_SIZE = 16  # `batch_size: auto` on the CPU, where memory does not bound the batch
LARGEST_BATCH_SIZE = 1024


@torch.no_grad()
def fitting_batch_size(model, seq_len: int, device: torch.device) -> int:
    """The largest power-of-two batch of ``seq_len``-token windows (up to 1024) whose forward
    pass fits on ``device``, found by trying; ``CPU_BATCH_SIZE`` on the CPU."""
    if device.type != "cuda":
        return CPU_BATCH_SIZE
    autocast = torch.autocast("cuda", dtype=torch.bfloat16)
    size = LARGEST_BATCH_SIZE
    while size > 1:
        try:
            with autocast:
                logits = model(torch.zeros(size, seq_len, dtype=torch.long, device=device)).logits
            logits.float()  # the scoring's float32 copy of the logits must fit too
            return size
        except torch.cuda.OutOfMemoryError:
            size //= 2
        finally:
            torch.cuda.empty_cache()
    return 1


@torch.no_grad()
def perplexity(
    model,
    documents: Sequence[Sequence[int]],
    eos: int,
    seq_len: int | None = None,
    batch_size: int | str = "auto",
    device: str | None = None,
) -> dict:
    """Token-level perplexity of ``model`` on ``documents`` (each its token ids, without EOS):
    {"tokens", "nll", "perplexity"}. ``batch_size="auto"``: the largest that fits the GPU
    (:func:`fitting_batch_size`)."""
    if not len(documents):
        raise ValueError("no test documents to score")
    device = torch.device(eval_device(device))
    seq_len = min(
        seq_len or model.config.max_position_embeddings, model.config.max_position_embeddings
    )
    model.to(device).eval()
    if batch_size == "auto":
        batch_size = fitting_batch_size(model, seq_len, device)
    windows = [w for doc in documents for w in document_windows(doc, eos, seq_len)]
    windows.sort(key=len)  # batches of similar length pad little
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")
    total_nll, total_tokens = 0.0, 0
    for start in range(0, len(windows), batch_size):
        batch = windows[start : start + batch_size]
        width = max(len(w) for w in batch)
        tokens = torch.full((len(batch), width), eos, dtype=torch.long)
        targets = torch.full((len(batch), width - 1), -100, dtype=torch.long)
        for row, window in enumerate(batch):
            tokens[row, : len(window)] = torch.tensor(window)
            targets[row, : len(window) - 1] = torch.tensor(window[1:])
        tokens, targets = tokens.to(device), targets.to(device)
        with autocast:
            logits = model(tokens[:, :-1]).logits.float()
        nll = torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.size(-1)),
            targets.reshape(-1),
            ignore_index=-100,
            reduction="sum",
        )
        total_nll += nll.item()
        total_tokens += int((targets != -100).sum())
    return {
        "tokens": total_tokens,
        "nll": total_nll,
        "perplexity": math.exp(total_nll / total_tokens),
    }


def domain_perplexities(
    model_dir: str | Path,
    tokens: dict[str, str | Path],
    out_json: str | Path,
    batch_size: int | str = "auto",
) -> dict:
    """Perplexity on each domain's test split (domain -> token directory, written with the
    model's tokenizer), written as JSON (domain -> tokens, nll, perplexity)."""
    from .model import load_model
    from .tokenizer import load_tokenizer
    from .tokens import check_tokenizer, documents, read_offsets, read_tokens, verify_token_file

    tokenizer = load_tokenizer(model_dir)
    model = load_model(model_dir)
    results = {}
    for domain, directory in tokens.items():
        check_tokenizer(directory, tokenizer, f"the tokenizer of {model_dir}")
        verify_token_file(directory, "test")
        test = documents(read_tokens(directory, "test"), read_offsets(directory, "test"))
        if not test:
            raise ValueError(
                f"domain {domain!r}: the test split of {directory} is empty; resample it "
                "with splits.test > 0"
            )
        results[domain] = perplexity(model, test, tokenizer.eos_token_id, batch_size=batch_size)
        print(f"{domain}: perplexity {results[domain]['perplexity']:.3f}", flush=True)
    write_json(out_json, results)
    return results


def task_prefix(dataset: str) -> str:
    """lm-eval task names are identifiers: ``demo-new`` -> ``cmix_demo_new``."""
    return "cmix_" + re.sub(r"\W", "_", dataset)


def build_local_tasks(
    dataset: str,
    test_shards: dict[str, str | Path],
    tokenizer_dir: str | Path,
    out_dir: str | Path,
    seed: int,
    examples_per_domain: int = 25,
    context_tokens: int = 64,
    continuation_tokens: int = 16,
) -> list[str]:
    """Write two lm-eval tasks over the held-out text of ``dataset`` into ``out_dir``.

    ``<prefix>_continuation``: the context is ``context_tokens`` tokens of a test document up
    to a random position; the choices are the true next ``continuation_tokens`` tokens and three
    spans of the same length from other documents of the same domain (chance: 25%). Spans are
    cut in tokens of the dataset's tokenizer so that they fit any model trained with it.
    ``<prefix>_rolling``: rolling log-likelihood of whole test documents (word/byte perplexity).
    Data files are written beside the configs and referenced by absolute path.
    """
    import yaml

    from .tokenizer import load_tokenizer, read_texts

    tokenizer = load_tokenizer(tokenizer_dir)
    rng = np.random.default_rng(seed)
    out_dir = Path(out_dir).resolve()
    span = context_tokens + continuation_tokens
    choice_rows, rolling_rows = [], []
    for domain, shard in test_shards.items():
        texts = read_texts([shard])
        ids = [d for d in tokenizer(texts, add_special_tokens=False)["input_ids"] if len(d) >= span]
        if len(ids) < 4:
            raise ValueError(
                f"domain {domain!r}: only {len(ids)} test documents have {span} tokens, and the "
                "continuation task needs 4; raise the test split"
            )
        choice_rows.extend(
            {"domain": domain, **example}
            for example in continuation_examples(
                ids, tokenizer, rng, examples_per_domain, context_tokens, continuation_tokens
            )
        )
        rolling_rows.extend({"domain": domain, "text": t} for t in texts)
    configs = local_task_configs(task_prefix(dataset), out_dir)
    with atomic_path(out_dir, directory=True) as tmp:
        for name, rows in (("continuation", choice_rows), ("rolling", rolling_rows)):
            (tmp / f"{name}.jsonl").write_text(
                "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
            )
        for config in configs:
            (tmp / f"{config['task']}.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return [config["task"] for config in configs]


def continuation_examples(
    ids: list[list[int]],
    tokenizer,
    rng: np.random.Generator,
    examples: int,
    context_tokens: int,
    continuation_tokens: int,
) -> list[dict]:
    """Up to ``examples`` multiple-choice questions over one domain's tokenized documents
    ``ids`` (each of at least ``context_tokens + continuation_tokens``): a document's context
    up to a random cut, its true continuation and three spans of other documents, shuffled."""
    questions = []
    for i in rng.permutation(len(ids))[:examples]:
        cut = int(rng.integers(context_tokens, len(ids[i]) - continuation_tokens + 1))
        spans = [ids[i][cut : cut + continuation_tokens]]
        for j in [j for j in rng.permutation(len(ids)) if j != i][:3]:
            start = int(rng.integers(0, len(ids[j]) - continuation_tokens + 1))
            spans.append(ids[j][start : start + continuation_tokens])
        order = rng.permutation(4)
        questions.append(
            {
                "context": tokenizer.decode(ids[i][cut - context_tokens : cut]),
                "choices": [tokenizer.decode(spans[k]) for k in order],
                "label": int(np.argmin(order)),  # where the true continuation went
            }
        )
    return questions


def local_task_configs(prefix: str, out_dir: Path) -> tuple[dict, dict]:
    """The lm-eval configs of the continuation and rolling tasks over the data files in
    ``out_dir``."""
    common = {
        "dataset_path": "json",
        "test_split": "test",
        "metadata": {"version": 1.0},
    }
    continuation = {
        **common,
        "task": f"{prefix}_continuation",
        "dataset_kwargs": {"data_files": {"test": str(out_dir / "continuation.jsonl")}},
        "output_type": "multiple_choice",
        "doc_to_text": "{{context}}",
        "doc_to_choice": "{{choices}}",
        "doc_to_target": "{{label}}",
        "target_delimiter": "",
        "metric_list": [
            {"metric": "acc", "aggregation": "mean", "higher_is_better": True},
            {"metric": "acc_norm", "aggregation": "mean", "higher_is_better": True},
            {"metric": "acc_mutual_info", "aggregation": "mean", "higher_is_better": True},
        ],
    }
    rolling = {
        **common,
        "task": f"{prefix}_rolling",
        "dataset_kwargs": {"data_files": {"test": str(out_dir / "rolling.jsonl")}},
        "output_type": "loglikelihood_rolling",
        "doc_to_text": "",
        "doc_to_target": "{{text}}",
        "metric_list": [
            {"metric": m} for m in ("word_perplexity", "byte_perplexity", "bits_per_byte")
        ],
    }
    return continuation, rolling


def resolve_tasks(requested: list[str], local: list[str], task_manager) -> list[str]:
    """``local`` expands to the dataset's local tasks; unknown names fail with suggestions."""
    tasks = []
    known = set(task_manager.all_tasks)
    for name in requested:
        if name == "local":
            tasks.extend(local)
        elif name in known:
            tasks.append(name)
        else:
            close = difflib.get_close_matches(name, known, n=3)
            raise ValueError(
                f"lm-eval has no task {name!r}"
                + (f"; did you mean {', '.join(close)}?" if close else "")
                + " (`lm-eval ls tasks` lists them; `local` is this dataset's own tasks)"
            )
    return tasks


def downstream(
    model_dir: str | Path,
    tasks: list[str],
    shots: list[int],
    local_task_dir: str | Path,
    out_json: str | Path,
    limit: int | None = None,
    batch_size: int | str = "auto",
) -> dict:
    """Run lm-eval on the saved model for every task and shot count; scores are averaged
    over shots. ``local`` in ``tasks`` means the task configs in ``local_task_dir``.
    Output: {task: {"metric", "score", "by_shots": {shots: {metric: value}}}}."""
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    from .model import load_model
    from .tokenizer import load_tokenizer

    local_tasks = [p.stem for p in sorted(Path(local_task_dir).glob("*.yaml"))]
    manager = TaskManager(include_path=str(Path(local_task_dir).resolve()))
    names = resolve_tasks(tasks, local_tasks, manager)
    # HFLM scores a model object on the device it is on, in its dtype: put it on the GPU in
    # bf16 first (left on the CPU in fp32, a 684M model's 13 tasks x 6 shots would not finish).
    model = load_model(model_dir, device=eval_device(None))
    if model.device.type == "cuda":
        model = model.to(torch.bfloat16)
    if batch_size == "auto" and model.device.type != "cuda":
        batch_size = CPU_BATCH_SIZE  # lm-eval's own search ("auto") probes GPU memory
    lm = HFLM(
        pretrained=model,
        tokenizer=load_tokenizer(model_dir),
        batch_size=batch_size,
        max_length=model.config.max_position_embeddings,
    )
    results: dict = {}
    for task in names:
        by_shots = {}
        # Rolling log-likelihood has no few-shot form: it scores whole documents.
        for shot in [0] if task.endswith("_rolling") else shots:
            try:
                out = simple_evaluate(
                    model=lm,
                    tasks=[task],
                    num_fewshot=shot,
                    task_manager=manager,
                    limit=limit,
                    log_samples=False,
                    bootstrap_iters=0,
                )
            except Exception as err:  # hub tasks fail in many ways when offline
                hint = (
                    ""
                    if task in local_tasks
                    else ". Hub tasks need their dataset from the Hugging Face hub (or its local "
                    "cache); offline, use `local` tasks"
                )
                raise RuntimeError(
                    f"lm-eval task {task!r} ({shot}-shot) failed: {type(err).__name__}: {err}{hint}"
                ) from err
            metrics = out["results"][task]
            by_shots[str(shot)] = {
                k.split(",")[0]: v
                for k, v in metrics.items()
                if isinstance(v, float) and "stderr" not in k
            }
        # Continuation choices are passages of unequal prior likelihood; mutual information
        # (log P(choice | context) - log P(choice)) scores what the context adds.
        reported = next(iter(by_shots.values()))
        metric = next(m for m in ("acc_mutual_info", "acc", "bits_per_byte") if m in reported)
        results[task] = {
            "metric": metric,
            "score": float(np.mean([m[metric] for m in by_shots.values()])),
            "by_shots": by_shots,
        }
        print(f"{task}: {metric} {results[task]['score']:.4f}", flush=True)
    write_json(out_json, results)
    return results
