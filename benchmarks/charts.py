"""The horizontal bar chart of seconds the benchmarks write next to their markdown tables."""

from __future__ import annotations

from pathlib import Path


def seconds_chart(path: Path, labels: list[str], seconds: list[float], colors: list[str], title: str,
                  row_height: float) -> None:  # fmt: skip
    """One bar per label, top to bottom in the given order; the title's dataset name goes on a second line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, row_height * len(labels) + 1.4))
    bars = ax.barh(labels[::-1], seconds[::-1], color=colors[::-1])
    ax.bar_label(bars, labels=[f"{s:.1f} s" for s in seconds[::-1]], padding=3)
    ax.set_xlabel("seconds (lower is better)")
    fig.suptitle(title.replace(", StackOverflow2010", "\nStackOverflow2010"), fontsize=10)
    ax.set_xlim(0, max(seconds) * 1.18)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
