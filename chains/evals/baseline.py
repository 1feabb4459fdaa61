"""Accepted baselines: `prompts/cases/accepted/<prompt>.json`, kept in the repo so a review shows them.

A baseline is an `EvalRun.to_json()` of the accepted prompt version: its content hash and its outputs.
`--against FILE` compares with any such file instead (e.g. a report JSON from another branch).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from chains.evals.cases import CaseError
from chains.evals.runner import EvalRun

__all__ = ["accepted_path", "load_baseline", "save_baseline"]


def accepted_path(cases_dir: Path, prompt: str) -> Path:
    """Where the accepted baseline of `prompt` lives."""
    return cases_dir / "accepted" / f"{prompt}.json"


def load_baseline(path: Path) -> dict[str, Any] | None:
    """Reads a baseline or report JSON; None when the file does not exist (nothing accepted yet).

    Raises:
        CaseError: the file exists but is not a baseline.
    """
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise CaseError(f"{path}: not a readable baseline ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("cases"), dict) or "version" not in data:
        raise CaseError(f"{path}: not a baseline (expected 'version' and 'cases')")
    return data


def save_baseline(run: EvalRun, path: Path) -> None:
    """Writes `run` as the accepted baseline (stable key order: small, readable diffs in review)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(run.to_json(), indent=2, ensure_ascii=False, sort_keys=True) + "\n", encoding="utf-8")
