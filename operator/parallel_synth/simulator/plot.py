"""The plot of fleet simulations: samples/day against the target, workers, cumulative dollars.

Apart from the simulation so that matplotlib is imported only when a PNG is asked for.
"""

from __future__ import annotations

from parallel_synth.simulator.model import SimReport


def plot(reports: list[SimReport], path: str, *, title: str = "") -> None:
    """Write a PNG: samples/day vs target, workers, cumulative dollars (phases side by side)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(3, 1, figsize=(10, 9), sharex=True)
    offset = 0
    for r in reports:
        xs = [offset + d.day for d in r.days]
        axes[0].plot(xs, [d.samples for d in r.days], label=f"{r.dataset}: committed/day")
        if r.target_per_day:
            axes[0].plot(xs, [r.target_per_day] * len(xs), "--", label=f"{r.dataset}: target")
        axes[1].plot(xs, [d.workers for d in r.days], label=f"{r.dataset}: running (avg)")
        axes[1].plot(xs, [d.desired for d in r.days], ":", label=f"{r.dataset}: desired")
        axes[2].plot(xs, [d.cumulative_dollars for d in r.days], label=f"{r.dataset}: $ spent")
        if r.budget_dollars is not None:
            axes[2].plot(xs, [r.budget_dollars] * len(xs), "--", label=f"{r.dataset}: budget")
        offset = xs[-1] if xs else offset
    axes[0].set_ylabel("samples / day")
    axes[1].set_ylabel("workers")
    axes[2].set_ylabel("dollars (cumulative)")
    axes[2].set_xlabel("simulated day")
    for ax in axes:
        ax.set_ylim(bottom=0)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    fig.suptitle(title or "parallel-synth fleet simulation")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
