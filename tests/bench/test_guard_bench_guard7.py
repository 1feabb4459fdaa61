"""guard7's bench pieces (no torch needed): the safetensors reader, the outer groups of the fine-tuning
comparison (whole families, seeded) and its threshold-free ranking figure."""

from __future__ import annotations

import json
import struct

import numpy as np

from bench.guard_finetune import FtConfig, _alone, _folds
from bench.guard_minilm import parse_safetensors


def test_safetensors_are_read_by_name_dtype_and_shape() -> None:
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    b = np.array([[7, 8]], dtype=np.int64)
    header = {"__metadata__": {"format": "pt"},
              "a": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, a.nbytes]},
              "b": {"dtype": "I64", "shape": [1, 2], "data_offsets": [a.nbytes, a.nbytes + b.nbytes]}}
    head = json.dumps(header).encode()
    raw = struct.pack("<Q", len(head)) + head + a.tobytes() + b.tobytes()
    out = parse_safetensors(raw)
    assert set(out) == {"a", "b"}
    assert np.array_equal(out["a"], a) and np.array_equal(out["b"], b) and out["b"].dtype == np.int64


def test_outer_groups_hold_whole_families_and_are_seeded() -> None:
    fams = np.array([f"f{i % 9}" for i in range(90)])
    groups = _folds(fams, 4)
    assert np.array_equal(groups, _folds(fams, 4))
    for f in set(fams):
        assert len(set(groups[fams == f])) == 1  # a family never straddles two groups
    assert set(groups) == {0, 1, 2, 3}


def test_ranking_figure_counts_attacks_above_the_benign_cut() -> None:
    labels = np.array([0] * 200 + [1] * 4 + [1] * 4)
    fams = np.array(["marketplace"] * 200 + ["a"] * 4 + ["b"] * 4)
    p = np.concatenate([np.linspace(0.0, 0.5, 200), [0.9, 0.9, 0.1, 0.1], [0.9, 0.9, 0.9, 0.9]])
    text = _alone(p, labels, fams, np.ones(len(p), dtype=bool))
    assert "above-zero-fp 0.750" in text  # a: 2/4 above the highest marketplace text, b: 4/4


def test_configurations_parse() -> None:
    cfg = FtConfig.parse("ft:2:3e-05:90")
    assert (cfg.k, cfg.lr, cfg.steps) == (2, 3e-5, 90)
    assert FtConfig.parse("ft:0").k == 0
