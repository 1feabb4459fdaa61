"""A pre-trained prompt-injection classifier over the guard's own MiniLM embedding (guard5, issue 17 route 3):
the MLP of the `jailguard` package, read from its wheel (not installed, not imported).

`jailguard` 0.1.2 (PyPI, MIT OR Apache-2.0; a Rust extension) scores text with all-MiniLM-L6-v2 sentence
embeddings and a 3-layer MLP (384 -> 256 -> 128 -> 1, ReLU, sigmoid) trained on 17 public sets (its
BENCHMARKS.md: deepset/prompt-injections, xTRam1/safe-guard-prompt-injection, jackhhao/jailbreak-classification,
rubend18/ChatGPT-Jailbreak-Prompts, Babelscape/ALERT, lmsys/toxic-chat, JailbreakBench, Alpaca, Dolly,
BeaverTails, Do-Not-Answer, Aegis, OpenAI moderation, shalyhinpavel hard positives, Lakera mosscap). Its own
runtime downloads the embedding model on first use, which this project never does; but the embedding is the
one the guard computes anyway, so only the MLP's weights are needed: a JSON document compiled into the native
module (`{"w_h1": ...}`), pinned here by sha256. Over a shared embedding the MLP costs ~15 us.

`bench/guard_bags.py` (`augment`) appends its logit or its last hidden layer to every text and window
embedding, and `bench/guard_window_select.py --pretrained none,logit,hidden` compares them under the nested
protocol on the development families (BENCHMARKS.md, guard5: neither helped, nothing ships).

    .venv/bin/pip download --no-deps jailguard==0.1.2 -d bench/.cache/x
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

__all__ = ["MLP_SHA256", "WHEEL", "PretrainedMLP", "load_mlp", "parse_mlp"]

WHEEL = Path(__file__).resolve().parent / ".cache" / "x" / "jailguard-0.1.2-cp38-abi3-manylinux_2_28_x86_64.whl"
MEMBER = "jailguard/_jailguard.abi3.so"
# sha256 of the JSON document of the MLP's weights inside jailguard 0.1.2's native module (1,586,366 bytes)
MLP_SHA256 = "de9c688c110c09ec69c465661d85251d66433849b57871ebf9a56cfbcffbc517"
_MARKER = b'{"w_h1":'


@dataclass(frozen=True)
class PretrainedMLP:
    """The MLP's layers (float32): hidden ReLU layers of 256 and 128 units, one output logit."""

    w1: np.ndarray
    b1: np.ndarray
    w2: np.ndarray
    b2: np.ndarray
    w3: np.ndarray
    b3: float

    def hidden(self, vectors: np.ndarray) -> np.ndarray:
        """The last hidden layer (n, 128) for (n, 384) unit embeddings."""
        h = np.maximum(np.asarray(vectors, dtype=np.float32) @ self.w1.T + self.b1, 0.0)
        out: np.ndarray = np.maximum(h @ self.w2.T + self.b2, 0.0)
        return out

    def logits(self, vectors: np.ndarray) -> np.ndarray:
        """The logit (P(injection) = sigmoid) for each embedding."""
        out: np.ndarray = (self.hidden(vectors) @ self.w3 + self.b3).astype(np.float64)
        return out


def parse_mlp(blob: bytes, expected: str = MLP_SHA256) -> PretrainedMLP:
    """The MLP from the bytes of the native module.

    Args:
        blob: the module's bytes.
        expected: the sha256 of the weights' JSON document.
    """
    start = blob.find(_MARKER)
    if start < 0:
        raise ValueError("no MLP weights in the module")
    text = blob[start:start + 4_000_000].decode("utf-8", errors="replace")
    doc, end = json.JSONDecoder().raw_decode(text)
    digest = hashlib.sha256(text[:end].encode("utf-8")).hexdigest()
    if digest != expected:
        raise ValueError(f"the MLP weights have sha256 {digest}, expected {expected}")
    mlp = PretrainedMLP(
        np.asarray(doc["w_h1"], dtype=np.float32), np.asarray(doc["b_h1"], dtype=np.float32),
        np.asarray(doc["w_h2"], dtype=np.float32), np.asarray(doc["b_h2"], dtype=np.float32),
        np.asarray(doc["w_out"], dtype=np.float32)[0], float(doc["b_out"][0]),
    )
    if mlp.w1.shape != (256, 384) or mlp.w2.shape != (128, 256) or mlp.w3.shape != (128,):
        raise ValueError("unexpected shapes")
    return mlp


@cache
def load_mlp(wheel: Path = WHEEL) -> PretrainedMLP:
    """The MLP read from the downloaded wheel (the `pip download` line in the module docstring)."""
    with zipfile.ZipFile(wheel) as zf:
        return parse_mlp(zf.read(MEMBER))
