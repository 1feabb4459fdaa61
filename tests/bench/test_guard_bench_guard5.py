"""guard5's bench pieces: the pre-trained MLP is found in a native module's bytes and refused with another
digest, `augment` appends its view to texts and windows alike, and the unaddressed indirect set is seeded,
balanced per carrier and addresses nobody (no vocative of guard_write_indirect.py's ADDRESS list)."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from bench import guard_bags
from bench.guard_bags import Bags, augment
from bench.guard_pretrained import PretrainedMLP, parse_mlp
from bench.guard_write_indirect import ADDRESS, CARRIERS
from bench.guard_write_unaddressed import OUT, build


def _doc() -> dict[str, object]:
    rng = np.random.default_rng(0)
    return {"w_h1": rng.normal(0, 0.1, (256, 384)).round(4).tolist(), "b_h1": [0.0] * 256,
            "w_h2": rng.normal(0, 0.1, (128, 256)).round(4).tolist(), "b_h2": [0.0] * 128,
            "w_out": rng.normal(0, 0.1, (1, 128)).round(4).tolist(), "b_out": [0.5], "dropout_rate": 0.2}


def test_the_mlp_is_read_from_module_bytes_and_pinned() -> None:
    doc = _doc()
    raw = json.dumps(doc, separators=(",", ":")).encode()
    blob = b"\x7fELF{\"vocab\":{\"a\":1}}" + raw + b"session mutex poisoned"
    mlp = parse_mlp(blob, hashlib.sha256(raw).hexdigest())
    x = np.random.default_rng(1).normal(size=(3, 384)).astype(np.float32)
    h = np.maximum(np.maximum(x @ np.array(doc["w_h1"]).T, 0) @ np.array(doc["w_h2"]).T, 0)
    assert np.allclose(mlp.logits(x), h @ np.array(doc["w_out"])[0] + 0.5, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="sha256"):
        parse_mlp(blob, hashlib.sha256(b"other").hexdigest())
    with pytest.raises(ValueError, match="no MLP"):
        parse_mlp(b"nothing", hashlib.sha256(raw).hexdigest())


def test_augment_appends_the_view_to_texts_and_windows(monkeypatch: pytest.MonkeyPatch) -> None:
    mlp = PretrainedMLP(np.ones((256, 384), np.float32), np.zeros(256, np.float32), np.ones((128, 256), np.float32),
                        np.zeros(128, np.float32), np.ones(128, np.float32), -1.0)
    monkeypatch.setattr("bench.guard_pretrained.load_mlp", lambda: mlp)
    x, w = np.eye(384, dtype=np.float32)[:2], np.eye(384, dtype=np.float32)[2:5]
    bags = Bags(x, w, np.array([0, 0, 1]), np.array([True, False]))
    logit = augment(bags, "logit")
    assert logit.x.shape == (2, 385) and logit.w.shape == (3, 385)
    assert logit.x[0, 384] == pytest.approx((256 * 128 - 1) / guard_bags.LOGIT_SCALE)
    assert augment(bags, "hidden").w.shape == (3, 512)
    assert augment(bags, None) is bags


def test_the_unaddressed_set_is_seeded_balanced_and_addresses_nobody() -> None:
    rows = build()
    assert rows == build()
    assert OUT.read_text(encoding="utf-8") == "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    for carrier in CARRIERS:
        labels = [r["label"] for r in rows if r["carrier"] == carrier]
        assert labels.count(1) == 12 and labels.count(0) == 8
    for r in rows:
        text = str(r["text"]).lower()
        assert not any(a.lower() in text for a in ADDRESS if len(a) > 3), r["text"]
