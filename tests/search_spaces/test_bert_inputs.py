"""The BERT space with user checkpoints and GLUE-style tasks, and its errors on bad input.

Checkpoints here are small BERTs built with transformers and saved in the Hugging Face layout;
the task is the standard-library docstring topic task (real English, see corpus.py).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from search_spaces.base import ArchError, SpaceError
from search_spaces.bert.checkpoint import packaged_dir
from search_spaces.bert.corpus import TOPICS, write_stdlib_topic_task
from search_spaces.bert.model import BertShape
from search_spaces.bert.space import BertSpace

SMALL = {"seq_len": 32, "num_texts": 8, "importance_examples": 8, "eval_batch_size": 16}


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    torch.set_num_threads(1)
    path = tmp_path_factory.mktemp("data")
    mp = pytest.MonkeyPatch()
    mp.setenv("PARETONAS_DATA_DIRS", str(path))
    mp.setenv("PARETONAS_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    yield path
    mp.undo()


def _tiny_bert(directory: Path, *, labels: list[str] | None, bin_format: bool) -> Path:
    """A random 2-layer BERT (optionally a sequence classifier) with MiniLM's tokenizer."""
    from transformers import BertConfig, BertForSequenceClassification, BertModel

    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2,
                     num_attention_heads=4, intermediate_size=64, max_position_embeddings=64)
    if labels:
        cfg.id2label = dict(enumerate(labels))
        cfg.label2id = {v: k for k, v in cfg.id2label.items()}
        cfg.architectures = ["BertForSequenceClassification"]
        model = BertForSequenceClassification(cfg)
    else:
        model = BertModel(cfg)
    directory.mkdir(parents=True)
    cfg.to_json_file(str(directory / "config.json"))
    if bin_format:
        torch.save(model.state_dict(), directory / "pytorch_model.bin")
    else:
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in model.state_dict().items()},
                  str(directory / "model.safetensors"))
    shutil.copy(packaged_dir() / "vocab.txt", directory / "vocab.txt")
    return directory


@pytest.fixture(scope="module")
def task(root) -> Path:
    counts = write_stdlib_topic_task(root / "topics", limit=600)
    assert counts["train"] > 300 and counts["dev"] > 100
    return root / "topics"


def test_topic_task_files_are_glue_shaped(task):
    lines = (task / "train.tsv").read_text().splitlines()
    assert lines[0] == "sentence\tlabel"
    rows = [ln.split("\t") for ln in lines[1:]]
    assert all(len(r) == 2 and r[1] in TOPICS and len(r[0].split()) >= 6 for r in rows)


def test_trained_head_accuracy_on_the_real_task(task):
    space = BertSpace({**SMALL, "task": "topics", "max_train_examples": 150,
                       "max_eval_examples": 64})
    assert set(space.metrics()) == {"fidelity", "accuracy"}
    full = space.evaluate(space.largest(), ["accuracy", "fidelity"])
    # five topics: chance is about 0.2; MiniLM embeddings separate them well
    assert full["accuracy"] > 0.5 and full["fidelity"] == pytest.approx(1.0, abs=1e-5)
    small = space.evaluate(space.smallest(), ["accuracy"])["accuracy"]
    assert 0.0 <= small <= 1.0
    arch = space.largest()
    sub = space.extract(arch)
    assert sub.classifier.out_features == len(TOPICS)
    assert space.cost(arch)["params"] == sum(p.numel() for p in sub.parameters())


def test_pair_task_reads_two_sentence_columns(root):
    write_stdlib_topic_task(root / "pairs", pairs=True, limit=200)
    space = BertSpace({**SMALL, "task": "pairs", "max_eval_examples": 16,
                       "max_train_examples": 60, "reorder": False})
    assert isinstance(space.task.dev.texts[0], tuple)
    assert space.task.labels == ["different", "same"]
    assert 0.0 <= space.evaluate(space.largest(), ["accuracy"])["accuracy"] <= 1.0


def test_checkpoint_classifier_matches_transformers(root):
    """A BertForSequenceClassification checkpoint (pytorch_model.bin): its pooler + classifier are
    used, and the largest subnet's logits equal transformers' on the same text."""
    from transformers import BertForSequenceClassification

    labels = sorted(TOPICS)
    ckpt = _tiny_bert(root / "tiny-cls", labels=labels, bin_format=True)
    write_stdlib_topic_task(root / "topics-ckpt", limit=120)
    space = BertSpace({**SMALL, "checkpoint": "tiny-cls", "task": "topics-ckpt",
                       "max_eval_examples": 16})
    assert space.task.from_checkpoint and space.task.labels == labels
    assert space.dimensions()["heads_0"].choices == (1, 2, 3, 4)
    ref = BertForSequenceClassification.from_pretrained(str(ckpt)).eval()
    rt = space.runtime
    texts = [t for t in space.task.dev.texts[:4]]
    enc = rt.tok.tok.encode_batch(texts)
    ids = torch.tensor([e.ids for e in enc])
    with torch.no_grad():
        expected = ref(input_ids=ids, attention_mask=(ids != 0).long(),
                       token_type_ids=torch.tensor([e.type_ids for e in enc])).logits
        got = space.extract(space.largest())(ids)
    np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=1e-4, atol=1e-5)
    assert 0.0 <= space.evaluate(space.smallest(), ["accuracy"])["accuracy"] <= 1.0


def test_plain_bert_directory_with_safetensors(root):
    _tiny_bert(root / "tiny", labels=None, bin_format=False)
    space = BertSpace({**SMALL, "checkpoint": "tiny"})
    assert space.dimensions()["ffn_1"].choices == (16, 32, 48, 64)
    assert space.evaluate(space.largest(), ["fidelity"])["fidelity"] == pytest.approx(1.0)
    with pytest.raises(SpaceError, match="'checkpoint' needs a BertForSequenceClassification"):
        BertSpace({**SMALL, "checkpoint": "tiny", "head": "checkpoint", "task": "topics"})


# --- bad input ---------------------------------------------------------------------------------
def test_non_bert_config_is_refused(root):
    bad = root / "gpt"
    bad.mkdir()
    (bad / "config.json").write_text(json.dumps({"model_type": "gpt2", "n_layer": 2}))
    (bad / "model.safetensors").write_bytes(b"")
    (bad / "vocab.txt").write_text("[PAD]\n")
    with pytest.raises(SpaceError, match=r"not BERT-shaped: model_type='gpt2'; allowed: 'bert'"):
        BertSpace({"checkpoint": "gpt"})


def test_bert_config_with_foreign_weights_is_refused(root):
    src = _tiny_bert(root / "tiny-src", labels=None, bin_format=False)
    bad = root / "mismatch"
    shutil.copytree(src, bad)
    cfg = json.loads((bad / "config.json").read_text())
    cfg["intermediate_size"] = 128  # the weights say 64
    (bad / "config.json").write_text(json.dumps(cfg))
    space = BertSpace({**SMALL, "checkpoint": "mismatch"})  # cheap: weights not read yet
    with pytest.raises(SpaceError, match=r"intermediate.dense.weight is \(64, 32\), "
                                         r"expected \(128, 32\)"):
        _ = space.runtime
    from safetensors.torch import load_file, save_file

    state = load_file(str(src / "model.safetensors"))
    del state["encoder.layer.1.attention.self.key.weight"]
    shutil.rmtree(bad)
    shutil.copytree(src, bad)
    save_file(state, str(bad / "model.safetensors"))
    with pytest.raises(SpaceError, match="not BERT-shaped: 1 tensor.*layer.1.attention.self.key"):
        _ = BertSpace({**SMALL, "checkpoint": "mismatch"}).runtime


def test_missing_checkpoint_pieces(root):
    (root / "empty").mkdir()
    with pytest.raises(SpaceError, match="no config.json"):
        BertSpace({"checkpoint": "empty"})
    with pytest.raises(SpaceError, match="does not exist"):
        BertSpace({"checkpoint": "nowhere"})


def test_tsv_with_missing_columns_or_unknown_labels(root):
    d = root / "badtask"
    d.mkdir()
    (d / "train.tsv").write_text("text\tlabel\nA sentence here.\tx\n")
    (d / "dev.tsv").write_text("sentence\tlabel\nAnother one.\tx\n")
    with pytest.raises(SpaceError, match=r"train.tsv has columns \['text', 'label'\]; expected "
                                         r"'sentence'"):
        BertSpace({"task": "badtask"})
    (d / "train.tsv").write_text("sentence\tlabel\nOne.\tpos\nTwo.\tneg\n")
    (d / "dev.tsv").write_text("sentence\tlabel\nThree.\tpos\nFour.\tneutral\n")
    with pytest.raises(SpaceError, match=r"label\(s\) \['neutral'\] unknown to the train split; "
                                         r"allowed: \['neg', 'pos'\]"):
        BertSpace({"task": "badtask"})
    (d / "dev.tsv").write_text("sentence\tlabel\nThree.\n")
    with pytest.raises(SpaceError, match="line 2 has 1 column"):
        BertSpace({"task": "badtask"})


def test_arch_with_more_heads_than_the_layer_has(root):
    space = BertSpace(SMALL)
    with pytest.raises(ArchError, match=r"heads_2=16 is outside the space; allowed: \[3, 6, 9, "
                                        r"12\]"):
        space.validate(space.largest().replace(heads_2=16).to_dict())
    with pytest.raises(SpaceError, match="head_choices: \\[16\\] outside 1..12"):
        BertSpace({"head_choices": [6, 16]})
    full = BertShape((12,) * 6, (1536,) * 6)
    with pytest.raises(ArchError, match="layer 1: 13 attention heads requested but the layer "
                                        "has 12"):
        BertShape((12, 13), (1536, 1536)).check_within(full)
    with pytest.raises(SpaceError, match="seq_len: 1024 exceeds the 512 positions"):
        BertSpace({"seq_len": 1024})
    with pytest.raises(Exception, match="colour"):
        BertSpace({"colour": "red"})


def test_generator_cli_module(tmp_path, capsys):
    import argparse

    from search_spaces.bert import generate

    parser = argparse.ArgumentParser()
    generate.add_arguments(parser)
    assert generate.main(parser.parse_args([str(tmp_path / "t"), "--limit", "80"])) == 0
    out = json.loads(capsys.readouterr().out)
    assert sum(out["rows"].values()) == 80 and out["labels"] == sorted(TOPICS)
    assert (tmp_path / "t" / "dev.tsv").read_text().startswith("sentence\tlabel\n")
    assert generate.main(parser.parse_args([str(tmp_path / "u"), "--dev-fraction", "2"])) == 2
    assert "--dev-fraction must be between 0 and 1" in capsys.readouterr().err


def _small_arch(space: BertSpace):
    n = space.cfg.num_layers
    return space.validate({"layers": 4, **{f"heads_{i}": 3 for i in range(n)},
                           **{f"ffn_{i}": 384 for i in range(n)}})


def test_finetune_by_distillation_improves_fidelity_on_unseen_text(root):
    space = BertSpace({**SMALL, "num_texts": 32, "max_train_examples": 64})
    arch = _small_arch(space)
    before = space.evaluate(arch, ["fidelity"])["fidelity"]
    values, details = space.finetune(arch, ["fidelity"], epochs=3)
    assert details["objective"].startswith("cosine distillation")
    assert details["train_examples"] == 64 and details["steps"] == 3 * 4
    assert details["epoch_losses"][-1] < details["epoch_losses"][0]
    assert values["fidelity"] > before + 0.05, (before, values)
    # the supernet (and so every other trial) is untouched
    assert space.evaluate(arch, ["fidelity"])["fidelity"] == pytest.approx(before, abs=1e-6)
    values, details = space.finetune(space.largest(), ["fidelity"], epochs=1)
    assert "skipped" in details and values["fidelity"] == pytest.approx(1.0, abs=1e-5)


def test_finetune_on_the_task_trains_the_classifier(task):
    space = BertSpace({**SMALL, "task": "topics", "max_train_examples": 64,
                       "max_eval_examples": 32, "reorder": False})
    values, details = space.finetune(_small_arch(space), ["accuracy"], epochs=2, lr=1e-4)
    assert details["objective"].startswith("cross-entropy")
    assert details["epoch_losses"][-1] < details["epoch_losses"][0]
    assert set(values) == {"accuracy"} and 0.0 <= values["accuracy"] <= 1.0
