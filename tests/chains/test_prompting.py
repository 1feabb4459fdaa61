"""Prompt files: validation of keys, variables and fixed values, rendering, versions, and reload on edit."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from chains.prompting import PromptStore
from errors import PromptError
from settings import ROOT


def write(folder: Path, name: str, text: str) -> Path:
    p = folder / f"{name}.yaml"
    p.write_text(text, encoding="utf-8")
    return p


def test_shipped_prompts_all_load() -> None:
    store = PromptStore(ROOT / "prompts")
    names = [p.stem for p in (ROOT / "prompts").glob("*.yaml")]
    assert "chat" in names
    for name in names:
        assert store.get(name).system


def test_render_fills_variables(tmp_path: Path) -> None:
    write(tmp_path, "p", "variables: [city]\nsystem: Serve {city}.\nhuman: 'Hi from {city} {{literal}}'\n")
    system, human = PromptStore(tmp_path).get("p").render(city="Troy")
    assert system == "Serve Troy." and human == "Hi from Troy {literal}"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("sistem: hi\n", "unknown key"),
        ("system: ''\n", "non-empty"),
        ("system: Hello {name}\n", "not declared"),
        ("variables: [name, city]\nsystem: Hello {name}\n", "declared but never used"),
        ("system: Hello {0}\n", "plain names"),
        ("system: Hello {name\n", "placeholder syntax"),
        ("description: x\nsystem: \"a\" b\n", r"p.yaml:2: not valid YAML"),
        ("- a list\n", "mapping"),
    ],
)
def test_malformed_files_are_refused_clearly(tmp_path: Path, text: str, message: str) -> None:
    write(tmp_path, "p", text)
    with pytest.raises(PromptError, match=message):
        PromptStore(tmp_path).get("p")


def test_missing_variable_at_render(tmp_path: Path) -> None:
    write(tmp_path, "p", "variables: [city]\nsystem: Serve {city}.\n")
    with pytest.raises(PromptError, match="needs variable"):
        PromptStore(tmp_path).get("p").render()


def test_unknown_prompt_name(tmp_path: Path) -> None:
    with pytest.raises(PromptError, match=r"no prompt file nope\.yaml"):
        PromptStore(tmp_path).get("nope")
    with pytest.raises(PromptError, match="bad prompt name"):
        PromptStore(tmp_path).get("../etc/passwd")


def test_edit_takes_effect_without_restart(tmp_path: Path) -> None:
    store = PromptStore(tmp_path)
    p = write(tmp_path, "p", "system: version one\n")
    first = store.get("p")
    assert store.get("p") is first  # unchanged file: cached parse
    p.write_text("system: version two, longer\n")
    os.utime(p, ns=(first_ns := p.stat().st_mtime_ns + 1_000_000, first_ns))
    second = store.get("p")
    assert second.system == "version two, longer" and second.version != first.version


def test_values_in_the_file_fill_their_variables_and_count_in_the_version(tmp_path: Path) -> None:
    text = "variables: [keys, q]\nvalues:\n  keys: |-\n    a; b\nsystem: 'Keys: {keys}'\nhuman: '{q}'\n"
    write(tmp_path, "p", text)
    prompt = PromptStore(tmp_path).get("p")
    assert prompt.render(q="x", keys="ignored") == ("Keys: a; b", "x")  # the file's value wins
    write(tmp_path, "p", text.replace("a; b", "a; c"))
    assert PromptStore(tmp_path).get("p").version != prompt.version


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("variables: [a]\nvalues: {b: x}\nsystem: '{a}'\n", "not declared"),
        ("variables: [a]\nvalues: [x]\nsystem: '{a}'\n", "map variable names to texts"),
        ("variables: [a]\nvalues: {a: 3}\nsystem: '{a}'\n", "map variable names to texts"),
    ],
)
def test_malformed_values_are_refused(tmp_path: Path, text: str, message: str) -> None:
    write(tmp_path, "p", text)
    with pytest.raises(PromptError, match=message):
        PromptStore(tmp_path).get("p")


def test_examples_are_kept_as_turns_in_order(tmp_path: Path) -> None:
    text = ("variables: [city]\nsystem: One line.\nexamples:\n  - {human: 'City: Troy.', ai: 'Roofs in Troy.'}\n"
            "  - {human: 'City: Novi.', ai: 'Homes in Novi.'}\nhuman: 'City: {city}.'\n")
    write(tmp_path, "p", text)
    prompt = PromptStore(tmp_path).get("p")
    assert prompt.examples == (("City: Troy.", "Roofs in Troy."), ("City: Novi.", "Homes in Novi."))
    assert prompt.render(city="Flint") == ("One line.", "City: Flint.")
    assert PromptStore(tmp_path).get("p").examples == prompt.examples
    write(tmp_path, "p", text.replace("Roofs in Troy.", "Gutters in Troy."))
    assert PromptStore(tmp_path).get("p").version != prompt.version


@pytest.mark.parametrize(
    "examples", ["{human: a, ai: b}", "[{human: a}]", "[{human: a, ai: b, extra: c}]", "[{human: a, ai: ''}]"]
)
def test_malformed_examples_are_refused(tmp_path: Path, examples: str) -> None:
    write(tmp_path, "p", f"system: x\nexamples: {examples}\n")
    with pytest.raises(PromptError, match="'examples' must be a list"):
        PromptStore(tmp_path).get("p")
