"""Case files: the shipped ones load and name existing prompts; a malformed file's error names file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from chains.evals.cases import CaseError, load_case_file, load_cases
from chains.prompting import PromptStore
from tests.conftest import ROOT


def test_shipped_case_files_load_and_name_real_prompts() -> None:
    files = load_cases(ROOT / "prompts" / "cases")
    assert {f.prompt for f in files} >= {"chat", "describe", "search_parse"}
    store = PromptStore(ROOT / "prompts")
    for f in files:
        assert store.get(f.prompt).version
        assert any(c.smoke for c in f.cases), f"{f.path.name} has no smoke case"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "chat.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_bad_yaml_names_file_and_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "cases:\n  - id: a\n    input: {q: 1}\n    checks: {max_words: 3}}\n")
    with pytest.raises(CaseError) as err:
        load_case_file(path)
    assert err.value.message.startswith(f"{path}:4: not valid YAML")


def test_unknown_check_names_file_line_and_case(tmp_path: Path) -> None:
    path = _write(tmp_path, (
        "cases:\n"
        "  - id: fine\n    input: {q: 1}\n    checks: {max_words: 3}\n"
        "  - id: typo\n    input: {q: 1}\n    checks: {must_mentoin: [x]}\n"
    ))
    with pytest.raises(CaseError) as err:
        load_case_file(path)
    assert err.value.message.startswith(f"{path}:5 (case 'typo'): unknown check(s) must_mentoin")


@pytest.mark.parametrize(("body", "words"), [
    ("cases: []\n", "non-empty list"),
    ("cases:\n  - id: a\n    input: {q: 1}\n    checks: {max_words: -2}\n", "positive whole number"),
    ("cases:\n  - id: a\n    input: {q: 1}\n    checks: {json: {k: strng}}\n", "unknown type(s) strng"),
    ("cases:\n  - id: a\n    input: {q: 1}\n    checks: {max_words: 2}\n"
     "  - id: a\n    input: {q: 1}\n    checks: {max_words: 2}\n", "duplicate case id"),
    ("cases:\n  - id: a\n    input: text\n    checks: {max_words: 2}\n", "'input' must be a mapping"),
    ("prompt: chat\ncasez: []\n", "unknown key(s) casez"),
])
def test_malformed_cases_are_refused_clearly(tmp_path: Path, body: str, words: str) -> None:
    path = _write(tmp_path, body)
    with pytest.raises(CaseError) as err:
        load_case_file(path)
    assert err.value.message.startswith(f"{path}:") and words in err.value.message


def test_naming_a_prompt_without_cases_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(CaseError, match="no case file for nope"):
        load_cases(tmp_path, ["nope"])
