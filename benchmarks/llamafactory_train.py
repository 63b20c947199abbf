"""Train with a real ``llamafactory-cli train`` on our exports, on CPU, with a tiny local model.

Why: ``selfinstruct export`` writes alpaca / sharegpt / messages (and text) files plus a
``dataset_info.json`` meant for LLaMA-Factory (issue 13). Running LLaMA-Factory's parser
and converters on them is not the same as a training run consuming them; this script does
the latter: for each dataset registered in ``RUN/export/dataset_info.json`` it runs
``llamafactory-cli train`` (stage ``sft``; ``pt`` for a text export) for a few steps and
reports what LLaMA-Factory read. No hub access is needed: a byte-level BPE tokenizer is
trained on the export's own strings and a 2-layer, 64-wide Llama is built from a config.

Setup (a separate venv; LLaMA-Factory pulls torch, transformers, datasets, ...)::

    python3 -m venv /tmp/lfvenv && /tmp/lfvenv/bin/pip install llamafactory==0.9.5

Run (any Python 3.10+; the tiny model is built by the venv's own ``python``, found next
to ``llamafactory-cli``)::

    selfinstruct export RUN -f alpaca; selfinstruct export RUN -f sharegpt
    selfinstruct export RUN -f messages
    python benchmarks/llamafactory_train.py RUN /tmp/lfvenv/bin/llamafactory-cli \\
        [--work-dir DIR] [--max-steps 3] [--dataset NAME ...] [--template qwen3]

    selfinstruct export RUN --pairs -f alpaca; selfinstruct export RUN --pairs -f sharegpt
    python benchmarks/llamafactory_train.py RUN /tmp/lfvenv/bin/llamafactory-cli --dpo

``--dpo`` trains the preference pairs instead (``selfinstruct export RUN --pairs``: the
datasets registered with ``"ranking": true``), with stage ``dpo`` (sigmoid loss, beta
0.1, the reference model a frozen copy of the tiny one), and checks that the first
pair's prompt reached both tokenized sequences, its chosen answer the chosen one and its
rejected answer the rejected one.

Per dataset it prints: the examples LLaMA-Factory loaded (the trainer's ``Num examples``),
the first tokenized example as LLaMA-Factory decoded it (``inputs`` / ``labels``), whether
the first record's system prompt, prompt and answer reached that example, the steps run
and the loss of each step. Logs and configs are left under ``--work-dir``. Exit status 1
if any training failed, ran fewer steps than asked, had a non-finite loss, or lost the
system prompt / prompt / answer of the first record.

The CPU settings: ``use_cpu: true``, no bf16/fp16, ``CUDA_VISIBLE_DEVICES=""``, one
thread (``OMP_NUM_THREADS=1``), no dataloader workers, ``report_to: none``; cutoff_len
256, batch 1, full fine-tuning, 3 steps (a few seconds per dataset). Template
``default`` (``System: …</s>\\nHuman: …</s>\\nAssistant:…</s>``) shows the system prompt
in the text, so a dropped system column is visible; ``--template qwen3`` (a reasoning
template) shows how an inline ``<think>…</think>`` answer is read. A text export is
trained with stage ``pt`` and ``packing: false`` (packed, a few short records make no
block of cutoff_len tokens and LLaMA-Factory stops with "Cannot find sufficient samples").

First run with llamafactory 0.9.5, torch 2.14.1 (CPU), transformers 5.6.0,
datasets 4.0.0: every export format loaded all its records and trained 3 steps.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

SPECIALS = {"pad_token": "<pad>", "bos_token": "<s>", "eos_token": "</s>"}
# ChatML markers as special tokens, so that chatml-style templates (qwen3, whose EOS
# becomes <|im_end|>) find them in the vocabulary instead of adding tokens the model lacks.
CHATML = ["<|im_start|>", "<|im_end|>"]
TEMPLATE_WORDS = [
    "System: ",
    "Human: ",
    "\nAssistant:",
    "\n",
    "system\n",
    "user\n",
    "assistant\n",
    "<think>\n",
    "\n</think>\n\n",
]


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def read_records(path: Path) -> list[dict[str, Any]]:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    return json.loads(text)


def build_model(model_dir: Path, texts_file: Path, seed: int = 0) -> None:
    """Train the tokenizer on the texts and save it with a random tiny Llama (venv only)."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    texts = json.loads(texts_file.read_text(encoding="utf-8"))
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=600,
        min_frequency=1,
        special_tokens=[*SPECIALS.values(), *CHATML],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(texts + TEMPLATE_WORDS, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok, model_max_length=512, additional_special_tokens=CHATML, **SPECIALS
    )
    tokenizer.save_pretrained(model_dir)

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=512,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    model = LlamaForCausalLM(config)
    model.save_pretrained(model_dir)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"built {model_dir}: vocab {len(tokenizer)}, {n_params} parameters")


def first_record_parts(export_dir: Path, entry: dict[str, Any]) -> dict[str, str]:
    """System, first user prompt and first answer of the file's first record, per dataset_info."""
    [record] = read_records(export_dir / entry["file_name"])[:1]
    columns = entry.get("columns", {})
    if entry.get("formatting") == "sharegpt":
        tags = entry.get("tags", {})
        role, content = tags.get("role_tag", "from"), tags.get("content_tag", "value")
        turns = record[columns.get("messages", "conversations")]
        by_role: dict[str, str] = {}
        for turn in turns:
            by_role.setdefault(turn[role], turn[content])
        parts = {
            "system": by_role.get(tags.get("system_tag", "system"), ""),
            "prompt": by_role.get(tags.get("user_tag", "human"), ""),
            "answer": by_role.get(tags.get("assistant_tag", "gpt"), ""),
        }
        if not parts["system"] and "system" in columns:
            parts["system"] = record.get(columns["system"], "")
        return parts
    return {
        # a "system" key counts even when dataset_info does not map it: that is a loss
        "system": record.get(columns.get("system", "system"), "") or "",
        "prompt": record.get(columns.get("prompt", "instruction"), "") or "",
        "answer": record.get(columns.get("response", ""), "") or "",
    }


def first_pair_parts(export_dir: Path, entry: dict[str, Any]) -> dict[str, str]:
    """System, prompt, chosen and rejected answer of the first record of ranking data."""
    parts = first_record_parts(export_dir, entry)
    [record] = read_records(export_dir / entry["file_name"])[:1]
    columns = entry.get("columns", {})
    content = entry.get("tags", {}).get("content_tag", "value")
    for side in ("chosen", "rejected"):
        value = record[columns.get(side, side)]
        parts[side] = value[content] if isinstance(value, dict) else value
    del parts["answer"]
    return parts


def write_config(path: Path, config: dict[str, Any]) -> None:
    # JSON scalars are YAML scalars: one "key: value" line each is a valid YAML mapping.
    path.write_text("".join(f"{k}: {json.dumps(v)}\n" for k, v in config.items()))


BLOCK_END = re.compile(r"^(\[(INFO|WARNING|ERROR)\||\{'|\w+:$)")


def printed_block(stdout: str, header: str) -> str:
    """The text LLaMA-Factory printed under ``header:`` (its training example), up to the
    next header or log line; the decoded text itself may span lines."""
    lines = stdout.splitlines()
    if f"{header}:" not in lines:
        return ""
    block: list[str] = []
    for line in lines[lines.index(f"{header}:") + 1 :]:
        if BLOCK_END.match(line):
            break
        block.append(line)
    return "\n".join(block)


def train_one(
    cli: str,
    model_dir: Path,
    export_dir: Path,
    name: str,
    entry: dict[str, Any],
    work: Path,
    max_steps: int,
    template: str,
) -> dict[str, Any]:
    columns = entry.get("columns", {})
    text_only = entry.get("formatting", "alpaca") == "alpaca" and "response" not in columns
    stage = "dpo" if entry.get("ranking") else "pt" if text_only else "sft"
    out = work / name
    out.mkdir(parents=True, exist_ok=True)
    config = {
        "model_name_or_path": str(model_dir),
        "trust_remote_code": False,
        "stage": stage,
        "do_train": True,
        "finetuning_type": "full",
        "dataset_dir": str(export_dir),
        "dataset": name,
        "template": template,
        "cutoff_len": 256,
        "overwrite_cache": True,
        "max_steps": max_steps,
        "per_device_train_batch_size": 1,
        "gradient_accumulation_steps": 1,
        "learning_rate": 1.0e-3,
        "lr_scheduler_type": "constant",
        "logging_steps": 1,
        "save_strategy": "no",
        "output_dir": str(out / "output"),
        "overwrite_output_dir": True,
        "report_to": "none",
        "use_cpu": True,
        "bf16": False,
        "fp16": False,
        "dataloader_num_workers": 0,
        "seed": 0,
    }
    if stage == "pt":  # one example per record: packing would drop a tail under cutoff_len
        config["packing"] = False
    if stage == "dpo":  # LLaMA-Factory's DPO defaults, written out
        config.update(pref_beta=0.1, pref_loss="sigmoid")
    cfg = out / "cfg.yaml"
    write_config(cfg, config)
    env = dict(
        os.environ,
        CUDA_VISIBLE_DEVICES="",
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        TOKENIZERS_PARALLELISM="false",
        HF_HUB_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        HF_DATASETS_CACHE=str(work / "hf_datasets_cache"),
        WANDB_DISABLED="true",
    )
    started = time.monotonic()
    proc = subprocess.run(
        [cli, "train", str(cfg)], env=env, cwd=out, capture_output=True, text=True, check=False
    )
    wall = time.monotonic() - started
    log = proc.stdout + "\n" + proc.stderr
    (out / "train.log").write_text(log, encoding="utf-8")

    examples = re.search(r"Num examples = ([\d,]+)", log)
    state_file = out / "output" / "trainer_state.json"
    state = json.loads(state_file.read_text()) if state_file.exists() else {}
    losses = [(h["step"], h["loss"]) for h in state.get("log_history", []) if "loss" in h]
    margins = [(h["step"], h["rewards/margins"]) for h in state.get("log_history", [])
               if "rewards/margins" in h]
    if stage == "dpo":
        inputs = printed_block(proc.stdout, "chosen_inputs")
        labels = printed_block(proc.stdout, "rejected_inputs")
        parts = first_pair_parts(export_dir, entry)
        # system and prompt belong in both sequences; each answer in its own
        where = {"chosen": [inputs], "rejected": [labels]}
        reached = {k: (not v) or all(v.strip() in text for text in where.get(k, [inputs, labels]))
                   for k, v in parts.items()}
    else:
        inputs = printed_block(proc.stdout, "inputs")
        labels = printed_block(proc.stdout, "labels")
        parts = first_record_parts(export_dir, entry)
        reached = {k: (not v) or v.strip() in inputs for k, v in parts.items()}
    steps = state.get("global_step", 0)
    ok = (
        proc.returncode == 0
        and steps == max_steps
        and len(losses) > 0
        and all(math.isfinite(loss) for _, loss in losses)
        and all(reached.values())
    )
    return {
        "dataset": name,
        "file": entry["file_name"],
        "stage": stage,
        "returncode": proc.returncode,
        "examples_loaded": int(examples.group(1).replace(",", "")) if examples else None,
        "steps": steps,
        "losses": losses,
        "final_loss": losses[-1][1] if losses else None,
        "reward_margins": margins,
        "inputs": inputs,
        "labels": labels,
        "reached": reached,
        "wall_s": round(wall, 1),
        "log": str(out / "train.log"),
        "ok": ok,
        "tail": "" if proc.returncode == 0 else log[-3000:],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path, help="run directory with export/dataset_info.json")
    parser.add_argument("llamafactory_cli", nargs="?", help="path to llamafactory-cli")
    parser.add_argument("--work-dir", type=Path, help="default: RUN/lf_train")
    parser.add_argument("--max-steps", type=int, default=3)
    parser.add_argument("--dataset", action="append", help="only these dataset names")
    parser.add_argument("--dpo", action="store_true",
                        help="train the ranking datasets (export --pairs) with stage dpo")
    parser.add_argument(
        "--template",
        default="default",
        help="LLaMA-Factory template (default: default; qwen3 checks <think> handling)",
    )
    parser.add_argument("--build-model", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--texts", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.build_model:  # re-entered with the venv's python
        build_model(args.build_model, args.texts)
        return 0

    cli = args.llamafactory_cli or str(Path(sys.executable).with_name("llamafactory-cli"))
    python = str(Path(cli).with_name("python"))
    export_dir = (args.run_dir / "export").resolve()
    info: dict[str, Any] = json.loads((export_dir / "dataset_info.json").read_text())
    # SFT cannot read ranking data and DPO reads nothing else: --dpo picks the ranking ones.
    names = [n for n in args.dataset or list(info) if bool(info[n].get("ranking")) == args.dpo]
    work = (args.work_dir or args.run_dir / "lf_train").resolve()
    work.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()

    texts = sorted(
        {s for n in names for s in _strings(read_records(export_dir / info[n]["file_name"]))}
    )
    texts_file = work / "tokenizer_texts.json"
    texts_file.write_text(json.dumps(texts, ensure_ascii=False), encoding="utf-8")
    model_dir = work / "tiny-llama"
    subprocess.run(
        [
            python,
            os.path.abspath(__file__),
            str(args.run_dir),
            "--build-model",
            str(model_dir),
            "--texts",
            str(texts_file),
        ],
        check=True,
        env=dict(os.environ, OMP_NUM_THREADS="1"),
    )
    versions = subprocess.run(
        [
            python,
            "-c",
            "import importlib.metadata as m; print(', '.join(f'{p} ' + m.version(p) "
            "for p in ('llamafactory', 'torch', 'transformers', 'datasets', 'peft', 'trl')))",
        ],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    print(f"versions: {versions}")

    results = []
    for name in names:
        print(f"\n== {name} ({info[name]['file_name']}): llamafactory-cli train ...", flush=True)
        res = train_one(
            cli, model_dir, export_dir, name, info[name], work, args.max_steps, args.template
        )
        results.append(res)
        print(
            f"stage {res['stage']}, exit {res['returncode']}, {res['wall_s']} s, log {res['log']}"
        )
        print(f"examples loaded: {res['examples_loaded']}")
        first = "first chosen" if res["stage"] == "dpo" else "first example"
        second = "first rejected" if res["stage"] == "dpo" else "first example"
        print(f"{first} inputs: {res['inputs']!r}")
        if res["labels"]:
            print(f"{second} {'inputs' if res['stage'] == 'dpo' else 'labels'}: "
                  f"{res['labels']!r}")
        if res["reward_margins"]:
            print("reward margin (chosen - rejected) per step: "
                  + ", ".join(f"{s}: {m:.4f}" for s, m in res["reward_margins"]))
        print(
            "first record reached the example: "
            + ", ".join(f"{k} {'yes' if v else 'NO'}" for k, v in res["reached"].items())
        )
        print(
            f"steps run: {res['steps']}; loss per step: "
            + ", ".join(f"{s}: {loss:.4f}" for s, loss in res["losses"])
        )
        print(f"final loss: {res['final_loss']}  -> {'OK' if res['ok'] else 'FAILED'}")
        if res["tail"]:
            print(res["tail"])
    (work / "results.json").write_text(
        json.dumps({"versions": versions, "results": results}, ensure_ascii=False, indent=1)
    )
    print(f"\ntotal wall time {time.monotonic() - started:.1f} s; results {work / 'results.json'}")
    return 0 if all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
