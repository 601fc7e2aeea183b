"""Tokenizer loading (``tokenizers``, local files only) and GLUE-style TSV tasks.

A task file is tab-separated with a header row naming its columns: ``sentence`` (single-sentence
tasks such as SST-2) or ``sentence1`` + ``sentence2`` (pair tasks such as MRPC/RTE), and
``label``. Other columns are ignored. Missing columns, empty files and dev labels the train split
(or the checkpoint's classifier) does not know are ``SpaceError``s naming the file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from search_spaces.base import SpaceError
from search_spaces.bert.checkpoint import CheckpointFiles

Text = str | tuple[str, str]


class BertTokenizer:
    """A ``tokenizers`` tokenizer truncating to ``seq_len`` and padding to the batch's longest."""

    def __init__(self, files: CheckpointFiles, seq_len: int, pad_id: int):
        from tokenizers import Tokenizer
        from tokenizers.implementations import BertWordPieceTokenizer

        try:
            if files.tokenizer.name == "tokenizer.json":
                tok = Tokenizer.from_file(str(files.tokenizer))
            else:
                tok = BertWordPieceTokenizer(str(files.tokenizer), lowercase=_lowercase(files))
        except Exception as exc:  # a corrupt tokenizer file: say which
            raise SpaceError(f"checkpoint: cannot read {files.label}/{files.tokenizer.name}: "
                             f"{exc}") from exc
        sep = tok.token_to_id("[SEP]")
        if sep is None or tok.token_to_id("[CLS]") is None:
            raise SpaceError(f"checkpoint: {files.label} tokenizer has no [CLS]/[SEP] tokens; "
                             "is it a BERT tokenizer?")
        tok.enable_truncation(max_length=seq_len)
        tok.enable_padding(pad_id=pad_id, pad_token=tok.id_to_token(pad_id) or "[PAD]")
        self.tok, self.sep_id, self.pad_id, self.seq_len = tok, sep, pad_id, seq_len

    def __call__(self, texts: list[Text]) -> torch.Tensor:
        """Token ids [len(texts), longest] (pairs as ``[CLS] a [SEP] b [SEP]``)."""
        encs = self.tok.encode_batch(list(texts))
        return torch.tensor([e.ids for e in encs], dtype=torch.long)

    def fixed_length(self, text: str, batch: int = 1) -> torch.Tensor:
        """Exactly ``seq_len`` ids of real text (repeated until long enough), ``batch`` rows."""
        ids = self.tok.encode(text).ids
        words = text
        while len(ids) < self.seq_len:
            words = words + " " + text
            ids = self.tok.encode(words).ids
        return torch.tensor([ids[: self.seq_len]] * batch, dtype=torch.long)


def _lowercase(files: CheckpointFiles) -> bool:
    cfg = files.directory / "tokenizer_config.json"
    try:
        return bool(json.loads(cfg.read_text()).get("do_lower_case", True))
    except (OSError, ValueError, AttributeError):
        return True  # BERT's uncased default


@dataclass(frozen=True)
class TaskSplit:
    """One split of a classification task: texts and label strings."""

    texts: list[Text]
    labels: list[str]
    path: Path

    def __len__(self) -> int:
        return len(self.texts)


def read_tsv(path: Path, *, limit: int | None = None) -> TaskSplit:
    """Read a GLUE-style TSV (see module docstring) or raise SpaceError."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise SpaceError(f"task: cannot read {path.name}: {exc}") from exc
    if not lines:
        raise SpaceError(f"task: {path.name} is empty; expected a header row")
    header = lines[0].split("\t")
    if "label" not in header or not (
        "sentence" in header or {"sentence1", "sentence2"} <= set(header)
    ):
        raise SpaceError(
            f"task: {path.name} has columns {header}; expected 'sentence' or "
            "'sentence1' and 'sentence2', and 'label'"
        )
    pair = "sentence" not in header
    cols = [header.index(c) for c in (("sentence1", "sentence2") if pair else ("sentence",))]
    label_col = header.index("label")
    texts: list[Text] = []
    labels: list[str] = []
    for lineno, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) < len(header):
            raise SpaceError(f"task: {path.name} line {lineno} has {len(fields)} column(s); "
                             f"the header has {len(header)}")
        label = fields[label_col].strip()
        if not label:
            raise SpaceError(f"task: {path.name} line {lineno} has an empty label")
        texts.append((fields[cols[0]], fields[cols[1]]) if pair else fields[cols[0]])
        labels.append(label)
        if limit is not None and len(texts) >= limit:
            break
    if not texts:
        raise SpaceError(f"task: {path.name} has a header but no rows")
    return TaskSplit(texts, labels, path)


def label_indices(split: TaskSplit, known: list[str], *, source: str) -> torch.Tensor:
    """Map label strings to indices of ``known``; unknown labels are an error naming them."""
    index = {name: i for i, name in enumerate(known)}
    unknown = sorted({lab for lab in split.labels if lab not in index})
    if unknown:
        raise SpaceError(f"task: {split.path.name} has label(s) {unknown[:5]} unknown to "
                         f"{source}; allowed: {known}")
    return torch.tensor([index[lab] for lab in split.labels], dtype=torch.long)
