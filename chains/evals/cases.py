"""Golden cases: `prompts/cases/<prompt>.yaml`, one file per prompt file.

    prompt: chat              # optional: the file's stem
    cases_from: chat          # instead of `cases`: another file's cases (one chain's two prompts, compared)
    cases:
      - id: out-of-area       # unique in the file
        smoke: true           # optional: part of the cheap subset (`--smoke`, `make test`)
        input: {messages: [{role: user, content: "Can you film a wedding in Chicago?"}]}
        checks:
          must_mention: ["Detroit Metro"]          # each item must appear; "a|b" accepts either
          must_not_mention: ["Chicago operators"]  # none may appear
          max_words: 120
          json: {category: "string|null", features: list}   # the output is a JSON object of this shape
          refuses_out_of_area: true                # names Detroit Metro and declines politely
        judge: "Declines politely and offers help within Detroit Metro."   # only with a judge model

Every error names the file and the line (`CaseError`), so a typo is found without reading the loader.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from errors import PromptError

__all__ = ["CHECKS", "JSON_TYPES", "Case", "CaseError", "CaseFile", "load_case_file", "load_cases"]

CHECKS = {"must_mention", "must_not_mention", "max_words", "json", "refuses_out_of_area"}
JSON_TYPES = {"string", "number", "integer", "boolean", "list", "object", "null"}
_CASE_KEYS = {"id", "smoke", "input", "checks", "judge", "notes"}
_FILE_KEYS = {"prompt", "description", "cases", "cases_from"}


class CaseError(PromptError):
    """A case file is malformed; the message starts with `file:line`."""

    code = "case_file_error"


class _Map(dict[str, Any]):
    """A YAML mapping that remembers the line it starts on (1-based)."""

    line = 0


class _Loader(yaml.SafeLoader):
    pass


def _construct_map(loader: yaml.SafeLoader, node: yaml.MappingNode) -> Iterator[_Map]:
    out = _Map()
    out.line = node.start_mark.line + 1
    yield out
    out.update({str(k): v for k, v in loader.construct_mapping(node, deep=True).items()})


_Loader.add_constructor("tag:yaml.org,2002:map", _construct_map)


@dataclass(frozen=True)
class Case:
    """One golden case: an input for the prompt's chain and the checks its output must pass."""

    id: str
    input: dict[str, Any]
    checks: dict[str, Any]
    judge: str | None = None
    smoke: bool = False
    line: int = 0


@dataclass(frozen=True)
class CaseFile:
    prompt: str
    path: Path
    cases: list[Case] = field(default_factory=list)


def _strings(value: Any, where: str, key: str) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v.strip() for v in value):
        raise CaseError(f"{where}: '{key}' must be a non-empty list of texts")
    return list(value)


def _checks(raw: Any, where: str) -> dict[str, Any]:
    if not isinstance(raw, dict) or not raw:
        raise CaseError(f"{where}: 'checks' must be a mapping of check -> setting, e.g. max_words: 120")
    unknown = sorted(set(raw) - CHECKS)
    if unknown:
        raise CaseError(f"{where}: unknown check(s) {', '.join(unknown)}; known: {', '.join(sorted(CHECKS))}")
    out: dict[str, Any] = {}
    for key in ("must_mention", "must_not_mention"):
        if key in raw:
            out[key] = _strings(raw[key], where, key)
    if "max_words" in raw:
        n = raw["max_words"]
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise CaseError(f"{where}: 'max_words' must be a positive whole number, got {n!r}")
        out["max_words"] = n
    if "refuses_out_of_area" in raw:
        if not isinstance(raw["refuses_out_of_area"], bool):
            raise CaseError(f"{where}: 'refuses_out_of_area' must be true or false")
        out["refuses_out_of_area"] = raw["refuses_out_of_area"]
    if "json" in raw:
        shape = raw["json"]
        if not isinstance(shape, dict) or not shape:
            raise CaseError(f"{where}: 'json' must map each key to a type, e.g. {{place: string|null}}")
        for key, spec in shape.items():
            kinds = str(spec).split("|")
            if bad := [k for k in kinds if k not in JSON_TYPES]:
                raise CaseError(f"{where}: json key {key!r}: unknown type(s) {', '.join(bad)}; "
                                f"use {', '.join(sorted(JSON_TYPES))} joined by |")
        out["json"] = {str(k): str(v) for k, v in shape.items()}
    return out


def _case(raw: Any, where: str, seen: set[str]) -> Case:
    if not isinstance(raw, dict):
        raise CaseError(f"{where}: each case must be a mapping with 'id', 'input' and 'checks'")
    if unknown := sorted(set(raw) - _CASE_KEYS):
        raise CaseError(f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(_CASE_KEYS))}")
    cid = raw.get("id")
    if not isinstance(cid, str) or not cid.strip():
        raise CaseError(f"{where}: a case needs an 'id' (a short text)")
    if cid in seen:
        raise CaseError(f"{where}: duplicate case id {cid!r}")
    seen.add(cid)
    where = f"{where} (case {cid!r})"
    if not isinstance(raw.get("input"), dict):
        raise CaseError(f"{where}: 'input' must be a mapping (the chain's input)")
    judge = raw.get("judge")
    if judge is not None and (not isinstance(judge, str) or not judge.strip()):
        raise CaseError(f"{where}: 'judge' must be a rubric text")
    if not isinstance(raw.get("smoke", False), bool):
        raise CaseError(f"{where}: 'smoke' must be true or false")
    checks = _checks(raw.get("checks"), where) if "checks" in raw or judge is None else {}
    return Case(id=cid, input=_plain(raw["input"]), checks=checks, judge=judge, smoke=bool(raw.get("smoke")),
                line=getattr(raw, "line", 0))


def _plain(value: Any) -> Any:
    """Drops the line-number mappings: chains get plain dicts."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def load_case_file(path: Path) -> CaseFile:
    """Reads and validates one case file.

    Args:
        path: `prompts/cases/<prompt>.yaml`.

    Raises:
        CaseError: the file is unreadable or malformed; the message names the file and line.
    """
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)  # a SafeLoader subclass: safe
    except OSError as exc:
        raise CaseError(f"{path}: cannot read ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise CaseError(f"{where}: not valid YAML ({getattr(exc, 'problem', None) or exc})") from None
    if not isinstance(raw, dict):
        raise CaseError(f"{path}:1: expected a mapping with a 'cases' list")
    line = getattr(raw, "line", 1)
    if unknown := sorted(set(raw) - _FILE_KEYS):
        raise CaseError(f"{path}:{line}: unknown key(s) {', '.join(unknown)}; "
                        f"allowed: {', '.join(sorted(_FILE_KEYS))}")
    prompt = raw.get("prompt") or path.stem
    if not isinstance(prompt, str):
        raise CaseError(f"{path}:{line}: 'prompt' must be a prompt file's name")
    source = raw.get("cases_from")
    if source is not None:  # another prompt's cases, run on this prompt (two prompts of one chain, compared)
        if "cases" in raw or not isinstance(source, str) or source == path.stem:
            raise CaseError(f"{path}:{line}: 'cases_from' names another case file (and replaces 'cases')")
        other = load_case_file(path.with_name(f"{source}.yaml"))
        return CaseFile(prompt=prompt, path=path, cases=other.cases)
    items = raw.get("cases")
    if not isinstance(items, list) or not items:
        raise CaseError(f"{path}:{line}: 'cases' must be a non-empty list")
    seen: set[str] = set()
    cases = [_case(item, f"{path}:{getattr(item, 'line', line)}", seen) for item in items]
    return CaseFile(prompt=prompt, path=path, cases=cases)


def load_cases(folder: Path, names: list[str] | None = None) -> list[CaseFile]:
    """Every case file in `folder` (or those of the prompts `names`), sorted by prompt name.

    Raises:
        CaseError: a named prompt has no case file, or a file is malformed.
    """
    if names:
        missing = [n for n in names if not (folder / f"{n}.yaml").is_file()]
        if missing:
            raise CaseError(f"{folder}: no case file for {', '.join(missing)} (expected <prompt>.yaml)")
        paths = [folder / f"{n}.yaml" for n in names]
    else:
        paths = sorted(folder.glob("*.yaml"))
    return [load_case_file(p) for p in paths]
