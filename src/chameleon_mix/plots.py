"""Figures of the weights stage: affinity heatmap, 2-D embedding map, weights bars, stability."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .io import atomic_path

MAX_LABELLED = 100  # domains drawn and named one by one; beyond, as a distribution


def _figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    _figure().close(fig)


def plot_affinity(affinity: np.ndarray, names: list[str], path: str | Path) -> None:
    plt = _figure()
    fig, ax = plt.subplots(figsize=(1 + 0.6 * len(names), 0.8 + 0.6 * len(names)))
    image = ax.imshow(affinity, cmap="viridis")
    ax.set_xticks(range(len(names)), names, rotation=60, ha="right")
    ax.set_yticks(range(len(names)), names)
    ax.set_title("Domain affinity $\\Omega$")
    fig.colorbar(image, ax=ax, shrink=0.8)
    _save(fig, path)


def plot_embedding_map(samples: dict[str, np.ndarray], path: str | Path) -> None:
    """Sample embeddings (one cloud per domain) and domain means on their first two
    principal components."""
    plt = _figure()
    stacked = np.concatenate(list(samples.values())).astype(np.float64)
    mean = stacked.mean(axis=0)
    _, _, vt = np.linalg.svd(stacked - mean, full_matrices=False)
    fig, ax = plt.subplots(figsize=(7, 6))
    labelled = len(samples) <= MAX_LABELLED  # thousands of names would hide the map
    for name, cloud in samples.items():
        xy = (cloud - mean) @ vt[:2].T
        points = ax.scatter(xy[:, 0], xy[:, 1], s=4, alpha=0.3)
        centre = xy.mean(axis=0)
        ax.scatter(*centre, s=80, color=points.get_facecolor()[0], edgecolor="black", alpha=1)
        if labelled:
            ax.annotate(name, centre, fontsize=8, xytext=(4, 4), textcoords="offset points")
    ax.set_xlabel("PC 1")
    ax.set_ylabel("PC 2")
    ax.set_title("Sample embeddings (dots) and domain embeddings (circles)")
    _save(fig, path)


def plot_weights(
    weights: dict[str, float],
    path: str | Path,
    title: str = "Chameleon weights",
    intervals: dict[str, list[float]] | None = None,
) -> None:
    """One bar per domain, with its interval (``[low, high]``) as an error bar when given;
    beyond ``MAX_LABELLED`` domains (clusters), the weights sorted from largest to smallest
    against their rank, on a log scale, the intervals as a band."""
    plt = _figure()
    names = list(weights)
    if len(names) <= MAX_LABELLED:
        fig, ax = plt.subplots(figsize=(1.5 + 0.5 * len(names), 4))
        heights = np.array([weights[n] for n in names])
        errors = None
        if intervals:
            bounds = np.array([intervals[n] for n in names]).T  # (2, k): low, high
            # An interval need not contain its estimate (the bootstrap's bias): clip at 0.
            errors = np.clip(np.stack([heights - bounds[0], bounds[1] - heights]), 0, None)
        ax.bar(names, heights, yerr=errors, capsize=3, color="tab:green", ecolor="black")
        ax.tick_params(axis="x", rotation=60)
    else:
        fig, ax = plt.subplots(figsize=(7, 4))
        order = sorted(names, key=weights.get, reverse=True)
        rank = range(1, len(order) + 1)
        ax.plot(rank, [weights[n] for n in order], color="tab:green")
        if intervals:
            low, high = zip(*(intervals[n] for n in order))
            ax.fill_between(rank, low, high, color="tab:green", alpha=0.25, linewidth=0)
        ax.set_yscale("log")
        ax.set_xlabel(f"domain rank (of {len(names)})")
    ax.axhline(1 / len(names), color="grey", linestyle="--", label="uniform")
    ax.set_ylabel("weight")
    ax.set_title(title)
    ax.legend()
    _save(fig, path)


MARKED_POINTS = 20  # series this short are drawn with a marker at each point


def plot_stability(steps: list[int], weights: list[dict[str, float]], path: str | Path) -> None:
    """Weights of every domain against the proxy's training steps (the paper's Figure 2)."""
    plt = _figure()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name in weights[0]:
        ax.plot(steps, [w[name] for w in weights], marker="o", label=name)
    ax.set_xlabel("proxy training steps")
    ax.set_ylabel("weight")
    ax.set_title("Chameleon weights across proxy checkpoints")
    ax.legend(fontsize=7, ncol=2)
    _save(fig, path)


def plot_weight_trajectories(
    trajectories: dict[str, tuple[list[int], dict[str, list[float]]]],
    path: str | Path,
    titles: dict[str, str] | None = None,
) -> None:
    """Each method's domain weights against its proxy's training steps, side by side (the
    paper's Figure 2): DoReMi and DoGE at every step, Chameleon at each kept checkpoint;
    ``titles`` names the methods (their registry titles)."""
    plt = _figure()
    if not trajectories:
        fig, ax = plt.subplots(figsize=(6, 1.5))
        ax.axis("off")
        ax.text(0.5, 0.5, "no method here records weights over proxy training", ha="center")
        _save(fig, path)
        return
    fig, axes = plt.subplots(
        1, len(trajectories), figsize=(4.5 * len(trajectories), 4), sharey=True, squeeze=False
    )
    for ax, (method, (steps, weights)) in zip(axes[0], trajectories.items()):
        marker = "o" if len(steps) <= MARKED_POINTS else None  # a few checkpoints, not every step
        for name, series in weights.items():
            ax.plot(steps, series, marker=marker, label=name)
        ax.set_title((titles or {}).get(method, method))
        ax.set_xlabel("proxy training steps")
    axes[0][0].set_ylabel("domain weight")
    axes[0][-1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
    _save(fig, path)
