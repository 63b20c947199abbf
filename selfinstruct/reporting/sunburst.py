"""The verb–object sunburst of Self-Instruct's Figure 2, drawn with matplotlib.

The inner ring holds the most common leading verbs, the outer ring each verb's most
common direct objects; a wedge's angle is its share of the instructions shown.
matplotlib has no sunburst, but two rings of a donut (``pie`` with a wedge width) are
one, and labels are placed along each wedge's middle by hand.
"""

from __future__ import annotations

import math
from collections import Counter

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.colors import to_rgba

from selfinstruct.reporting.charts import figure_style, to_svg

TOP_VERBS = 20
TOP_OBJECTS = 4
#: Wedges narrower than this (degrees) are not labelled.
MIN_LABEL_DEGREES = 2.5


def top_pairs(pairs: Counter[tuple[str, str]], verbs: int = TOP_VERBS,
              objects: int = TOP_OBJECTS) -> list[tuple[str, list[tuple[str, int]]]]:
    """The ``verbs`` verbs with the most verb–object pairs, each with its ``objects`` most
    common objects (Self-Instruct shows the top 20 verbs and their top 4 nouns)."""
    by_verb: dict[str, Counter[str]] = {}
    for (verb, noun), count in pairs.items():
        by_verb.setdefault(verb, Counter())[noun] += count
    ranked = sorted(by_verb, key=lambda v: (-sum(by_verb[v].values()), v))[:verbs]
    return [(verb, sorted(by_verb[verb].items(), key=lambda item: (-item[1], item[0]))[:objects])
            for verb in ranked]


def sunburst(pairs: Counter[tuple[str, str]]) -> str | None:
    """The sunburst of the most common verb–object pairs, as SVG."""
    shown = top_pairs(pairs)
    if not shown:
        return None
    palette = [plt.get_cmap("tab20")(i) for i in range(20)]
    inner = [sum(n for _, n in nouns) for _, nouns in shown]
    outer = [n for _, nouns in shown for _, n in nouns]
    inner_colors = [palette[i % len(palette)] for i in range(len(shown))]
    outer_colors = [to_rgba(inner_colors[i], 0.55) for i, (_, nouns) in enumerate(shown)
                    for _ in nouns]
    with figure_style():
        fig, ax = plt.subplots(figsize=(7.5, 7.5))
        ring = {"width": 0.3, "edgecolor": "white", "linewidth": 0.8}
        verb_wedges, _ = ax.pie(inner, radius=0.7, colors=inner_colors, startangle=90,
                                counterclock=False, wedgeprops=ring)
        noun_wedges, _ = ax.pie(outer, radius=1.0, colors=outer_colors, startangle=90,
                                counterclock=False, wedgeprops=ring)
        for wedge, (verb, _) in zip(verb_wedges, shown, strict=True):
            _label(ax, wedge.theta1, wedge.theta2, 0.55, verb, 9)
        nouns = [noun for _, items in shown for noun, _ in items]
        for wedge, noun in zip(noun_wedges, nouns, strict=True):
            _label(ax, wedge.theta1, wedge.theta2, 0.85, noun, 7)
        ax.set(aspect="equal")
        return to_svg(fig)


def _label(ax: Axes, theta1: float, theta2: float, radius: float, text: str,
           size: int) -> None:
    if abs(theta2 - theta1) < MIN_LABEL_DEGREES:
        return
    middle = (theta1 + theta2) / 2
    x, y = radius * math.cos(math.radians(middle)), radius * math.sin(math.radians(middle))
    rotation = middle if -90 <= ((middle + 180) % 360) - 180 <= 90 else middle + 180
    ax.text(x, y, text, ha="center", va="center", rotation=rotation % 360,
            rotation_mode="anchor", fontsize=size)
