"""The loop the source articles wrote by hand for bulk annotation, for comparison.

    python benchmarks/distill_baseline.py ROWS.jsonl OUT_DIR --base-url URL --processes P

Our own code in the articles' shape: the rows in memory, a ``multiprocessing.Pool`` of P
processes mapping one function over them; each call fills the template with
``str.format(**row)``, sends one blocking request with the ``openai`` client (one client
per process), ``json.loads`` the fenced answer (``post_process``), and writes one JSON
file per row (so an error does not cost the other rows); an error is printed and the
row skipped. (The articles iterate a pandas DataFrame; a list of dicts is used here,
which only flatters the baseline.) Prints one JSON line: rows, rows done, seconds.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import re
import sys
import time
from pathlib import Path
from typing import Any

import openai

_FENCE = re.compile(r"```(?:json)?\s*\n(.*?)```", re.DOTALL)

#: Set in each worker by ``_init``.
_CLIENT: Any = None
_SETTINGS: dict[str, Any] = {}


def _init(settings: dict[str, Any]) -> None:
    global _CLIENT
    _SETTINGS.update(settings)
    _CLIENT = openai.OpenAI(base_url=settings["base_url"], api_key="EMPTY", max_retries=2)


def post_process(text: str) -> Any:
    """The answer's JSON: the fenced block after the trace."""
    answer = text.split("</think>", 1)[-1]
    match = _FENCE.search(answer)
    return json.loads(match.group(1) if match else answer)


def annotate(row: dict[str, Any]) -> bool:
    """One row: fill, send, parse, write its own file; False when it failed."""
    path = Path(_SETTINGS["out"]) / f"{row['id']}.json"
    if path.exists():
        return True
    try:
        prompt = _SETTINGS["template"].format(**row)
        response = _CLIENT.chat.completions.create(
            model=_SETTINGS["model"], max_tokens=2048,
            messages=[{"role": "system", "content": _SETTINGS["system"]},
                      {"role": "user", "content": prompt}])
        text = response.choices[0].message.content or ""
        result = {**row, "model_response": post_process(text)}
        path.write_text(json.dumps(result, ensure_ascii=False), encoding="utf-8")
        return True
    except Exception as err:  # the articles' loop: log and skip the row
        print(f"row {row['id']}: {err}", file=sys.stderr)
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("rows", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--model", default="fake-model")
    parser.add_argument("--processes", type=int, default=64)
    parser.add_argument("--template", required=True)
    parser.add_argument("--system", default="")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rows = [json.loads(line) for line in args.rows.read_text(encoding="utf-8").splitlines()]
    settings = {"base_url": args.base_url, "model": args.model, "out": str(args.out),
                "template": args.template, "system": args.system}
    began = time.monotonic()
    with multiprocessing.Pool(args.processes, initializer=_init, initargs=(settings,)) as pool:
        done = sum(pool.map(annotate, rows, chunksize=1))
        pool.close()
        pool.join()
    elapsed = time.monotonic() - began
    print(json.dumps({"rows": len(rows), "done": done, "seconds": round(elapsed, 3)}))


if __name__ == "__main__":
    main()
