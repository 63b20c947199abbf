"""The report on a small scripted run: valid, self-contained HTML whose figures are all
there and whose numbers match stats.json; the verb rule, the Wilson interval; and a
render in headless Chromium with no console error and a picture that is not blank."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import openpyxl
import pytest

from selfinstruct.reporting.facts import funnels
from selfinstruct.reporting.rates import review_rates, wilson
from selfinstruct.reporting.verbs import count_verbs
from selfinstruct.runs.scores import Review
from selfinstruct.stages.report import build_report
from selfinstruct.text.verbs import first_word, leading_verb_zh, verb_object
from tests.scripted_run import invoke, scored_run

FIGURES = {"funnel", "scores", "review rates", "verb-object sunburst", "first words",
           "similarity to seeds", "lengths"}


class Page(HTMLParser):
    """What the tests look at: images, links and every data-stat cell."""

    def __init__(self) -> None:
        super().__init__()
        self.images: dict[str, str] = {}
        self.urls: list[str] = []
        self.stats: dict[str, str] = {}
        self.tags: list[str] = []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        self.tags.append(tag)
        for name in ("src", "href"):
            if attributes.get(name) is not None:
                self.urls.append(attributes[name])
        if tag == "img":
            self.images[attributes["alt"]] = attributes["src"]
        if "data-stat" in attributes:
            self.stats[attributes["data-stat"]] = attributes["data-value"]


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """A scored run with a review round and an export at --min-score 4, then its report."""
    run = scored_run(tmp_path_factory.mktemp("report"), n=30)
    invoke("review", str(run), "--sample", "12", "--lowest", "3")
    book = openpyxl.load_workbook(run / "review.xlsx")
    sheet = book["Sheet1"]
    for row in range(2, sheet.max_row + 1):
        for column, value in zip("HIJK", ("y", "y", "yn"[row % 2], "keep"), strict=True):
            sheet[f"{column}{row}"] = value
    book.save(run / "review.xlsx")
    invoke("review", str(run), "--import", str(run / "review.xlsx"))
    invoke("export", str(run), "--min-score", "4")
    invoke("report", str(run))
    return run


@pytest.fixture(scope="module")
def page(run) -> Page:
    parsed = Page()
    parsed.feed((run / "report.html").read_text(encoding="utf-8"))
    return parsed


def test_the_report_holds_every_figure_as_inline_svg(page):
    assert set(page.images) == FIGURES
    for src in page.images.values():
        assert src.startswith("data:image/svg+xml;base64,")
        svg = base64.b64decode(src.split(",", 1)[1]).decode("utf-8")
        assert "<svg" in svg and "http://www.w3.org/2000/svg" in svg
    assert all(url.startswith("data:") for url in page.urls)  # nothing fetched when opened
    assert "link" not in page.tags and page.tags.count("script") == 1


def test_the_numbers_match_stats_json(run, page):
    stats = json.loads((run / "stats.json").read_text())
    generate = stats["generate"]
    assert int(page.stats["generate.in"]) == generate["candidates"]
    assert int(page.stats["generate.kept"]) == generate["kept"] == 30
    for name, count in generate["rejected"].items():
        if name != "unparseable":
            assert int(page.stats[f"generate.rejected.{name}"]) == count
    for name, count in stats["instances"]["rejected"].items():
        assert int(page.stats[f"instances.rejected.{name}"]) == count
    score = stats["score"]
    assert int(page.stats["score.in"]) == score["total"]
    assert int(page.stats["score.rejected.unparseable_verdict"]) == \
        score["rejected"]["unparseable_verdict"]
    assert {k: int(page.stats[f"score.histogram.{k}"]) for k in score["histogram"]} == \
        score["histogram"]
    assert float(page.stats["score.mean"]) == score["mean"]
    for name, mean in score["dimension_means"].items():
        assert float(page.stats[f"score.dimension_means.{name}"]) == mean
    export = stats["export"]
    assert int(page.stats["export.in"]) == export["considered"]
    assert int(page.stats["export.kept"]) == export["kept"]
    assert int(page.stats["export.rejected.below_min_score"]) == export["below_min_score"]


def test_the_report_names_the_filters_and_the_review(run):
    text = (run / "report.html").read_text(encoding="utf-8")
    assert "generate · similarity" in text and "score · unparseable_verdict" in text
    assert "3 lowest-scored examples (--lowest) were reviewed too" in text
    assert "Self-Instruct: 26,559 of 52,445" in text


def test_dry_run_writes_nothing(run, tmp_path):
    result = build_report(run, tmp_path / "r.html", dry_run=True)
    assert not result.path.exists() and result.facts.funnels


def test_a_chinese_run_gets_leading_verbs(tmp_path):
    run = tmp_path / "zh"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"language": "zh"}))
    texts = ["写一首关于春天的诗。", "请解释为什么天空是蓝色的。", "给出三个保持健康的建议。",
             "写一篇关于友谊的短文。"]
    (run / "instructions.jsonl").write_text("".join(
        json.dumps({"id": f"g{i}", "instruction": t}, ensure_ascii=False) + "\n"
        for i, t in enumerate(texts)), encoding="utf-8")
    result = build_report(run)
    assert set(result.figures) == {"funnel", "verbs", "first_words", "lengths"}
    assert result.facts.verbs is not None
    assert result.facts.verbs.verbs == {"写": 2, "解释": 1, "给出": 1}
    assert result.facts.verbs.first_words["写"] == 2
    assert 'lang="zh"' in result.path.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        ([("Write", "VB"), ("a", "DT"), ("short", "JJ"), ("poem", "NN"), ("about", "IN")],
         ("write", "poem")),
        ([("List", "NNP"), ("five", "CD"), ("healthy", "JJ"), ("snacks", "NNS")],
         ("list", "snacks")),
        ([("please", "VB"), ("give", "VB"), ("me", "PRP"), ("a", "DT"), ("cover", "NN"),
          ("letter", "NN"), (".", ".")], ("give", "letter")),
        ([("Can", "MD"), ("you", "PRP"), ("tell", "VB"), ("me", "PRP"), ("a", "DT"),
          ("joke", "NN")], ("tell", "joke")),
        ([("Explain", "VB"), ("why", "WRB"), ("the", "DT"), ("sky", "NN")], ("explain", None)),
        ([("What", "WP"), ("is", "VBZ"), ("the", "DT"), ("capital", "NN")], None),
        ([("Customer", "NN"), ("reviews", "NNS"), ("are", "VBP")], None),
        ([], None),
    ],
)
def test_verb_object(tags, expected):
    assert verb_object(tags) == expected


def test_chinese_leading_verb_and_first_words():
    assert leading_verb_zh([("请", "v"), ("解释", "v"), ("原因", "n")]) == "解释"
    assert leading_verb_zh([("将", "d"), ("下面", "f"), ("的", "uj"), ("句子", "n"),
                            ("翻译", "v")]) is None
    assert first_word(["?", "Write", "a"]) == "write"
    counts = count_verbs(["Write a poem about the sea.", "List five snacks.",
                          "What is love?"], "en")
    assert counts.pairs == {("write", "poem"): 1, ("list", "snack"): 1}
    assert counts.with_pair == 2 and counts.instructions == 3


def test_wilson_interval():
    low, high = wilson(5, 10)
    assert (round(low, 4), round(high, 4)) == (0.2366, 0.7634)
    low, high = wilson(0, 10)
    assert low == 0.0 and round(high, 4) == 0.2775
    assert wilson(10, 10)[1] == 1.0 and wilson(0, 0) is None


def test_review_rates_leave_out_the_lowest_and_blank_answers():
    reviews = [Review("a", "keep", True, True, True),
               Review("b", "drop", True, None, False),
               Review("c", "drop", False, False, False, picked="lowest")]
    rates = {r.name: (r.yes, r.answered) for r in review_rates(reviews)}
    assert rates == {"valid_instruction": (2, 2), "appropriate_input": (1, 1),
                     "correct_output": (1, 2), "all_three": (1, 1)}


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def render(html: Path, screenshot: Path, tmp_path: Path) -> list[str]:
    """Open ``html`` in headless Chromium; its console messages, from Chromium's log."""
    done = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr",
         "--v=0", "--window-size=1200,3000", f"--screenshot={screenshot}", html.as_uri()],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert screenshot.exists(), done.stderr[-2000:]
    return [line for line in done.stderr.splitlines() if ":CONSOLE" in line]


@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium is not installed "
                    "(Debian's chromium package; .ci/run installs it)")
def test_the_report_renders_in_chromium(run, tmp_path):
    import numpy as np
    from PIL import Image

    console = render(run / "report.html", tmp_path / "report.png", tmp_path)
    assert console == []
    pixels = np.asarray(Image.open(tmp_path / "report.png").convert("RGB")).reshape(-1, 3)
    assert (pixels != 255).any(axis=1).mean() > 0.05
    assert len(np.unique(pixels, axis=0)) > 50  # figures, not a blank or one-colour page
    # the page's check does fire when a figure cannot be drawn
    broken = tmp_path / "broken.html"
    broken.write_text((run / "report.html").read_text(encoding="utf-8").replace(
        "data:image/svg+xml;base64,", "data:image/svg+xml;base64,AAAA", 1), encoding="utf-8")
    assert any("figure not drawn: funnel" in line
               for line in render(broken, tmp_path / "broken.png", tmp_path))


def test_the_instances_funnel_counts_instances_not_tasks(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    task = {"id": "gen_000000", "instruction": "Add the numbers."}
    (run / "instructions.jsonl").write_text(json.dumps(task) + "\n", encoding="utf-8")
    (run / "instances.jsonl").write_text(json.dumps({**task, "instances": [
        {"input": "2 and 3", "output": "5"}, {"input": "1 and 1", "output": "2"}]}) + "\n",
        encoding="utf-8")
    written = sum(len(json.loads(line)["instances"])
                  for line in (run / "instances.jsonl").read_text().splitlines())
    instances = next(f for f in funnels(run) if f.stage == "instances")
    assert (instances.candidates, instances.kept, written) == (2, 2, 2)
