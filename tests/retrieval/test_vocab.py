"""The vocabulary is defined once and everything generated from it stays in step: its own tables agree
(categories, services, features, filter phrases name real filters), the LLM hints' schema is the vocabulary's
and the filters', and the files that keep generated parts (the search prompt, its golden cases) and the
prompt's accepted baseline are up to date. Each failure says which command brings them back in step."""

from __future__ import annotations

import re
from typing import get_args

from chains.evals.baseline import accepted_path, load_baseline
from chains.evals.cases import load_case_file
from chains.prompting import PromptStore
from retrieval.filters import SearchFilters, hints
from retrieval.llm_hints import LLMHints, hints_shape, prompt_values
from retrieval.vocab import (
    CATEGORIES,
    CATEGORY_PATTERNS,
    FEATURE_NAMES,
    FEATURES,
    FILTER_PATTERNS,
    SERVICE_HINTS,
    SERVICES,
    Category,
    implied_features,
)
from retrieval.vocab.sync import PROMPT, generated_files, render_cases, render_prompt
from tests.conftest import ROOT

PROMPTS = ROOT / "prompts"
CASES = PROMPTS / "cases"


def test_the_tables_agree() -> None:
    assert tuple(CATEGORY_PATTERNS) == CATEGORIES == tuple(SERVICES) == get_args(Category)
    services = {s for offered in SERVICES.values() for s in offered}
    for name, f in FEATURES.items():
        assert f.phrases, name
        assert set(f.implied_by) <= services | set(CATEGORIES), (name, f.implied_by)
    assert implied_features("agriculture", ["crop spraying"]) == {"spray_system"}
    assert set(SERVICE_HINTS) <= services  # a situation names a service a listing can offer


def test_every_filter_phrase_sets_a_real_filter_with_a_value_it_accepts() -> None:
    for phrase, pattern in FILTER_PATTERNS:
        assert phrase.filter in SearchFilters.model_fields, phrase
        if phrase.value is None:
            assert "n" in pattern.groupindex, f"{phrase.pattern}: a phrase without a value must capture (?P<n>...)"
        else:
            SearchFilters.model_validate({phrase.filter: phrase.value})


def test_the_hints_are_generated_from_the_vocabulary_and_the_filters() -> None:
    assert list(LLMHints.model_fields) == ["category", "place", "features", *hints()]
    assert get_args(get_args(LLMHints.model_fields["category"].annotation)[0]) == CATEGORIES
    assert list(hints_shape()) == ["category", "place", *hints(), "features"]
    keys = prompt_values()["keys"]
    for name in [*CATEGORIES, *FEATURE_NAMES, *(f'"{k}"' for k in hints_shape())]:
        assert re.search(rf"(?<![\w\"]){re.escape(name)}(?![\w\"])", keys), name


def test_generated_files_are_in_step() -> None:
    stale = [str(g.path.relative_to(ROOT)) for g in generated_files(PROMPTS, CASES) if g.stale]
    assert not stale, f"{stale} out of step with retrieval/vocab: run `.venv/bin/python -m retrieval.vocab --write`"


def test_what_the_model_sees_is_what_was_generated() -> None:
    prompt = PromptStore(PROMPTS).get(PROMPT)
    assert prompt.values == prompt_values()
    system, _ = prompt.render(query="q")
    assert prompt_values()["keys"] in system
    for case in load_case_file(CASES / f"{PROMPT}.yaml").cases:
        assert case.checks["json"] == hints_shape(), case.id


def test_the_accepted_baseline_is_for_this_prompt() -> None:
    base = load_baseline(accepted_path(CASES, PROMPT))
    assert base is not None
    version = PromptStore(PROMPTS).get(PROMPT).version
    assert base["version"] == version, (
        f"prompts/cases/accepted/{PROMPT}.json is for {base['version']}, the prompt is {version}: "
        f"run `.venv/bin/skymarket prompts eval {PROMPT} --accept` (the local model answers it offline)"
    )
    assert set(base["cases"]) == {c.id for c in load_case_file(CASES / f"{PROMPT}.yaml").cases}


def test_the_generator_rewrites_only_its_parts() -> None:
    prompt = (PROMPTS / f"{PROMPT}.yaml").read_text(encoding="utf-8")
    drifted = prompt.replace("payload_drop", "payload_drip")
    assert drifted != prompt and render_prompt(drifted) == prompt
    without = re.sub(r"^values:.*\n(?:[ \t]+.*\n)*", "", prompt, flags=re.MULTILINE)
    assert "values:" not in without and render_prompt(without) == prompt
    cases = (CASES / f"{PROMPT}.yaml").read_text(encoding="utf-8")
    assert render_cases(cases.replace('"number|null", features', '"number", features')) == cases


def test_every_feature_said_in_words_is_asked_for() -> None:
    from retrieval.places import load_gazetteer
    from retrieval.query import QueryParser

    parser = QueryParser(load_gazetteer(ROOT / "data" / "places.json"))
    for feature in FEATURE_NAMES:  # "payload drop", "weekend availability": the name itself is a phrase
        assert feature in parser.parse(f"a drone with {feature.replace('_', ' ')}").features, feature


def test_the_relevance_judgements_name_the_vocabularys_words() -> None:
    import yaml

    queries = yaml.safe_load((ROOT / "bench" / "search_queries.yaml").read_text(encoding="utf-8"))
    specs = [s for q in queries for s in q.get("best", []) + q.get("good", [])]
    services = {s for offered in SERVICES.values() for s in offered}
    for spec in specs:  # a renamed service or feature would silently grade every listing 0
        assert set(spec["category"]) <= set(CATEGORIES), spec
        assert set(spec.get("services", [])) <= services, spec
        assert set(spec.get("features", [])) <= set(FEATURES), spec
