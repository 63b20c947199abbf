"""The report's figures, drawn by matplotlib as SVG text.

Each function returns one figure's SVG (or None when there is nothing to draw). Text
stays text (``svg.fonttype: none``) with a list of fonts that covers Chinese, so the
browser draws Chinese labels with whatever CJK font the reader's machine has; the
machine making the report needs none. Output is deterministic (fixed ids, no date), so
the same run gives the same file.
"""

from __future__ import annotations

import io
import math
import warnings
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from selfinstruct.reporting.facts import Funnel, SeedSimilarity
from selfinstruct.reporting.rates import SELF_INSTRUCT, Rate
from selfinstruct.text.rubric import Scale

FONTS = ["DejaVu Sans", "Noto Sans CJK SC", "Source Han Sans SC", "WenQuanYi Micro Hei",
         "Microsoft YaHei", "PingFang SC", "Hiragino Sans GB", "SimHei"]
STYLE: dict[str, Any] = {
    "svg.fonttype": "none",
    "svg.hashsalt": "selfinstruct",
    "font.family": "sans-serif",
    "font.sans-serif": FONTS,
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": 10,
}
KEPT, REJECTED, TOTAL, ACCENT = "#2e7d32", "#c62828", "#78909c", "#1565c0"


@contextmanager
def figure_style() -> Iterator[None]:
    """matplotlib settings for every report figure, and no warnings about CJK glyphs."""
    with plt.rc_context(STYLE), warnings.catch_warnings():  # type: ignore[arg-type]
        # Glyphs missing from DejaVu Sans (Chinese) only affect matplotlib's layout
        # estimate; the browser draws them with its own fonts.
        warnings.filterwarnings("ignore", message="Glyph .* missing from font")
        yield


def to_svg(fig: Figure) -> str:
    """The figure as SVG text, closed afterwards."""
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None}, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def funnel_chart(funnels: Sequence[Funnel]) -> str | None:
    """Per stage: what came in, what each filter took out, what was kept."""
    if not funnels:
        return None
    rows = [len(f.rejected) + 2 for f in funnels]
    with figure_style():
        fig, axes = plt.subplots(len(funnels), 1, figsize=(8, 0.32 * sum(rows) + 0.6 *
                                                          len(funnels)),
                                 gridspec_kw={"height_ratios": rows}, squeeze=False)
        for ax, funnel in zip(axes[:, 0], funnels, strict=True):
            labels = [f"{funnel.unit}", *(name for name, _ in funnel.rejected), "kept"]
            values = [funnel.candidates, *(n for _, n in funnel.rejected), funnel.kept]
            colors = [TOTAL, *([REJECTED] * len(funnel.rejected)), KEPT]
            positions = range(len(values))[::-1]
            ax.barh(list(positions), values, color=colors)
            ax.set_yticks(list(positions), labels)
            ax.set_title(funnel.stage, loc="left", fontweight="bold")
            top = max(values) or 1
            for y, value in zip(positions, values, strict=True):
                share = f" ({value / funnel.candidates:.0%})" if funnel.candidates else ""
                ax.text(value + top * 0.01, y, f"{value:,}{share}", va="center")
            ax.set_xlim(0, top * 1.25)
            ax.xaxis.set_visible(False)
            ax.spines["bottom"].set_visible(False)
        fig.tight_layout()
        return to_svg(fig)


def length_histograms(lengths: dict[str, list[int]]) -> str | None:
    """Histograms of instruction, input and output lengths."""
    if not any(lengths.values()):
        return None
    with figure_style():
        fig, axes = plt.subplots(1, len(lengths), figsize=(10, 2.8))
        for ax, (name, values) in zip(axes, lengths.items(), strict=True):
            ax.set_title(f"{name}s ({len(values):,})")
            ax.set_xlabel("length (words; a Han character is one)")
            if not values:
                ax.text(0.5, 0.5, "none", ha="center", transform=ax.transAxes)
                continue
            cap = sorted(values)[max(0, math.ceil(0.99 * len(values)) - 1)]
            ax.hist([min(v, cap) for v in values], bins=min(30, max(cap, 1)), color=ACCENT)
            median = sorted(values)[len(values) // 2]
            ax.axvline(median, color="black", linestyle="--", linewidth=1)
            ax.text(median, ax.get_ylim()[1] * 0.95, f" median {median}", va="top")
        axes[0].set_ylabel("count")
        fig.tight_layout()
        return to_svg(fig)


def similarity_histogram(similarity: SeedSimilarity | None) -> str | None:
    """ROUGE-L of each generated instruction to its most similar seed."""
    if similarity is None or not similarity.scores:
        return None
    with figure_style():
        fig, ax = plt.subplots(figsize=(6, 2.8))
        ax.hist(similarity.scores, bins=[i / 20 for i in range(21)], color=ACCENT,
                edgecolor="white")
        if similarity.threshold is not None:
            ax.axvline(similarity.threshold, color=REJECTED, linestyle="--", linewidth=1)
            ax.text(similarity.threshold, ax.get_ylim()[1] * 0.95,
                    f" filter threshold {similarity.threshold:g}", color=REJECTED, va="top")
        ax.set_xlim(0, 1)
        ax.set_xlabel(f"ROUGE-L to the most similar of {similarity.seeds} seed tasks")
        ax.set_ylabel("instructions")
        fig.tight_layout()
        return to_svg(fig)


def bar_chart(counts: Counter[str], title: str, total: int, top: int = 20) -> str | None:
    """The ``top`` most common values of ``counts`` as horizontal bars."""
    if not counts:
        return None
    items = counts.most_common(top)
    with figure_style():
        fig, ax = plt.subplots(figsize=(6, 0.25 * len(items) + 0.9))
        positions = list(range(len(items)))[::-1]
        ax.barh(positions, [n for _, n in items], color=ACCENT)
        ax.set_yticks(positions, [name for name, _ in items])
        for y, (_, n) in zip(positions, items, strict=True):
            ax.text(n, y, f" {n:,} ({n / total:.1%})", va="center")
        ax.set_xlim(0, items[0][1] * 1.3)
        ax.set_title(title, loc="left")
        ax.xaxis.set_visible(False)
        ax.spines["bottom"].set_visible(False)
        fig.tight_layout()
        return to_svg(fig)


def score_charts(stats: dict[str, Any], scale: Scale | None) -> str | None:
    """The histogram of overall scores and the mean of each dimension."""
    if not stats.get("scored"):
        return None
    histogram: dict[str, int] = stats["histogram"]
    means: dict[str, float] = stats["dimension_means"]
    with figure_style():
        fig, (left, right) = plt.subplots(1, 2, figsize=(10, 2.8),
                                          gridspec_kw={"width_ratios": [3, 2]})
        keys = [float(k) for k in histogram]
        left.bar(keys, list(histogram.values()), width=0.4 if len(keys) > 1 else 0.5,
                 color=ACCENT)
        for x, n in zip(keys, histogram.values(), strict=True):
            left.text(x, n, f"{n:,}", ha="center", va="bottom")
        if scale is not None:
            left.set_xticks(range(scale.low, scale.high + 1))
        left.set_xlabel(f"overall score (mean {stats['mean']:.2f})")
        left.set_ylabel("examples")
        left.set_title("overall scores", loc="left")
        names = list(means)[::-1]
        right.barh(names, [means[n] for n in names], color=KEPT)
        for y, name in enumerate(names):
            right.text(means[name], y, f" {means[name]:.2f}", va="center")
        if scale is not None:
            right.set_xlim(scale.low, scale.high + 0.6)
        right.set_title("mean score per dimension", loc="left")
        fig.tight_layout()
        return to_svg(fig)


def review_chart(rates: Sequence[Rate]) -> str | None:
    """Each review rate with its 95% interval, beside Self-Instruct's."""
    shown = [rate for rate in rates if rate.answered]
    if not shown:
        return None
    with figure_style():
        fig, ax = plt.subplots(figsize=(7, 2.8))
        xs = list(range(len(shown)))
        values = [rate.value or 0.0 for rate in shown]
        low = [v - (r.interval or (v, v))[0] for v, r in zip(values, shown, strict=True)]
        high = [(r.interval or (v, v))[1] - v for v, r in zip(values, shown, strict=True)]
        ax.bar(xs, values, width=0.5, color=ACCENT, label="this run",
               yerr=[low, high], capsize=4)
        ax.scatter(xs, [SELF_INSTRUCT[r.name] for r in shown], marker="D", color="black",
                   zorder=3, label="Self-Instruct (GPT-3)")
        ax.set_xticks(xs, [r.name.replace("_", " ") for r in shown])
        ax.set_ylim(0, 1.05)
        ax.set_ylabel("share answered yes")
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
        fig.tight_layout()
        return to_svg(fig)
