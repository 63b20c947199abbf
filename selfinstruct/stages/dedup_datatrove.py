"""MinHash dedup as datatrove's four-step pipeline, for corpora bigger than one machine.

``dedup --method minhash`` holds every signature in memory (~0.9 KB per document at 112
hashes), which is fine up to tens of millions of documents on one machine. Past that,
datatrove runs the same idea as four steps over files (signatures, bucket matches,
clusters, filter) under its local, Slurm or Ray executors. This module builds those
steps from the same :class:`~selfinstruct.stages.dedup.MinHashDedupSettings`, so that

- the text field is ``settings.field`` in the steps that read records (1 and 4): one
  setting, never one per step (a signature step reading another field than the
  filter is how a pipeline finds "no duplicates");
- the words are our tokenizer's (Chinese without a segmenter), not datatrove's
  per-language spaCy / jieba ones; n-gram, bands, rows and seed are the settings'.

datatrove hashes and clusters its own way (xxhash of the normalised n-gram text,
``(a * x + b) mod (2**61 - 1)``, union by cluster size), so it removes nearly but
not exactly the same records as the in-process path, and keeps a record of each
cluster that is not necessarily the first. It is an optional extra
(``pip install 'selfinstruct[datatrove]'``) and imported only here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from selfinstruct.errors import UserError
from selfinstruct.similarity.tokens import TOKENIZERS
from selfinstruct.stages.dedup import MinHashDedupSettings

__all__ = ["DatatroveSteps", "datatrove_steps", "run_local", "word_tokenizer"]


@dataclass(frozen=True)
class DatatroveSteps:
    """The four pipelines, each with the number of tasks it is meant to run as; give each
    to an executor (``LocalPipelineExecutor(pipeline=..., tasks=...)``, Slurm, Ray) and
    run them in order."""

    signatures: list[Any]
    buckets: list[Any]
    clusters: list[Any]
    filter: list[Any]
    buckets_tasks: int


def datatrove_steps(settings: MinHashDedupSettings, work_dir: Path,
                    input_glob: str | None = None) -> DatatroveSteps:
    """datatrove's MinHash steps for ``settings``: read ``settings.input`` (a JSONL file,
    or a folder of them with ``input_glob``), keep to ``settings.output`` (a folder, one
    JSONL file per task) and, if set, write removed records to ``settings.removed``
    (a folder); intermediate files go under ``work_dir``."""
    modules = _import_datatrove()
    readers, writers, minhash, hashing = modules
    config = minhash.MinhashConfig(
        n_grams=settings.ngram, num_buckets=settings.bands, hashes_per_bucket=settings.rows,
        seed=settings.seed, hash_config=hashing.HashConfig(precision=64),
    )
    folder, pattern = _input_location(settings.input, input_glob)

    def reader() -> Any:
        return readers.JsonlReader(str(folder), glob_pattern=pattern,
                                   text_key=settings.field, id_key=settings.id_field)

    def writer(path: Path) -> Any:
        return writers.JsonlWriter(str(path), compression=None,
                                   adapter=_record_adapter(settings))

    removed = writer(settings.removed) if settings.removed is not None else None
    return DatatroveSteps(
        signatures=[reader(), minhash.MinhashDedupSignature(
            output_folder=str(work_dir / "signatures"), config=config,
            language=word_tokenizer(settings.tokenizer))],
        buckets=[minhash.MinhashDedupBuckets(input_folder=str(work_dir / "signatures"),
                                             output_folder=str(work_dir / "buckets"),
                                             config=config)],
        clusters=[minhash.MinhashDedupCluster(input_folder=str(work_dir / "buckets"),
                                              output_folder=str(work_dir / "remove_ids"),
                                              config=config)],
        filter=[reader(),
                minhash.MinhashDedupFilter(input_folder=str(work_dir / "remove_ids"),
                                           exclusion_writer=removed),
                writer(settings.output)],
        buckets_tasks=settings.bands,
    )


def run_local(steps: DatatroveSteps, work_dir: Path, *, tasks: int = 1,
              workers: int = 1) -> None:
    """Run the four steps in order with datatrove's local executor (logs under
    ``work_dir/logs``). ``tasks`` splits the input files of steps 1 and 4; the bucket
    step runs one task per band."""
    from datatrove.executor import LocalPipelineExecutor

    plan = (("signatures", steps.signatures, tasks), ("buckets", steps.buckets,
                                                      steps.buckets_tasks),
            ("clusters", steps.clusters, 1), ("filter", steps.filter, tasks))
    for name, pipeline, count in plan:
        LocalPipelineExecutor(pipeline=pipeline, tasks=count, workers=min(workers, count),
                              logging_dir=str(work_dir / "logs" / name)).run()


def word_tokenizer(name: str) -> Any:
    """Our tokenizer as a datatrove ``WordTokenizer`` (only ``word_tokenize`` is used by
    the MinHash steps)."""
    from datatrove.utils.word_tokenizers import WordTokenizer

    split = TOKENIZERS[name]

    class SelfinstructTokenizer(WordTokenizer):  # type: ignore[misc]
        """Words of selfinstruct's tokenizer; sentences are not needed for MinHash."""

        def word_tokenize(self, text: str) -> list[str]:
            return split(text)

        def sent_tokenize(self, text: str) -> list[str]:
            return [text]

        def span_tokenize(self, text: str) -> list[tuple[int, int]]:
            return [(0, len(text))]

    return SelfinstructTokenizer(name)


def _record_adapter(settings: MinHashDedupSettings) -> Any:
    """Write a document back as the record it was read from (text under ``field``)."""
    def adapt(_writer: Any, document: Any) -> dict[str, Any]:
        fields = {key: value for key, value in document.metadata.items() if key != "file_path"}
        return {settings.id_field: document.id, settings.field: document.text, **fields}
    return adapt


def _input_location(path: Path, glob: str | None) -> tuple[Path, str]:
    """(folder, glob pattern) that datatrove's reader needs for one file or a folder."""
    if path.is_dir():
        return path, glob or "*.jsonl"
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    return path.parent, path.name


def _import_datatrove() -> tuple[Any, Any, Any, Any]:
    """The datatrove modules, or one line that says how to install them."""
    try:
        from datatrove.pipeline import readers, writers
        from datatrove.pipeline.dedup import minhash
        from datatrove.utils import hashing
    except ImportError:
        raise UserError("datatrove is not installed; pip install 'selfinstruct[datatrove]'"
                        ) from None
    return readers, writers, minhash, hashing
