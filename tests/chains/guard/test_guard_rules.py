"""The rules file: every branch of every rule is reachable through the trigger gating (`any`, `needs`, anchors,
windows), checked on strings generated from each rule's own regex (one per alternative of every
alternation), so a rule added to `data/guard/patterns.yaml` is covered without writing its examples; and
rules scoped to data sources run for those sources only."""

from __future__ import annotations

from pathlib import Path

import pytest

from chains.guard.detect import Detection, load_rules, scan
from chains.guard.rules import Rule
from tests.chains.guard.rule_examples import examples

RULES = load_rules().rules


def _fires(rule: Rule, text: str, source: str) -> bool:
    found = Detection()
    scan([text], found, load_rules(), source=source)
    return rule.id in found.hits


@pytest.mark.parametrize("rule", RULES, ids=[r.id for r in RULES])
def test_every_branch_of_the_rule_is_reachable(rule: Rule) -> None:
    source = sorted(rule.sources)[0] if rule.sources else "chat"
    cases = examples(rule.regex.pattern)
    not_generated = [(where, text) for where, text in cases if not rule.regex.search(text)]
    assert not_generated == [], "the generator could not build a matching string"
    unreached = [(where, text) for where, text in cases if not _fires(rule, text, source)]
    assert unreached == [], f"{rule.id}: branches the gating switches off"


def test_generated_strings_cover_the_issue_17_gating_cases() -> None:
    """The branches issue 17 found switched off are generated (and so tested) by the generator."""
    rules = {r.id: r for r in RULES}
    texts = [t for _, t in examples(rules["jailbreak_no_limits"].regex.pattern)]
    assert any("doesn't have" in t for t in texts) and any("don't have" in t for t in texts)
    texts = [t for _, t in examples(rules["indirect_only_this"].regex.pattern)]
    assert any("other than" in t for t in texts)


def test_data_only_rules_do_not_run_on_chat() -> None:
    scoped = [r for r in RULES if r.sources is not None]
    assert scoped, "the indirect-injection rules for data sources are scoped"
    for rule in scoped:
        assert rule.sources is not None and "chat" not in rule.sources
        text = examples(rule.regex.pattern)[0][1]
        assert _fires(rule, text, "listing") and not _fires(rule, text, "chat")


def test_rules_file_rejects_unknown_sources(tmp_path: Path) -> None:
    bad = tmp_path / "p.yaml"
    bad.write_text(
        "unicode: {}\nencoded: {default: 0.5}\nrules:\n"
        "  - {id: x, family: y, weight: 0.5, any: [a], pattern: a, sources: [email]}\n"
    )
    with pytest.raises(ValueError, match="sources"):
        load_rules(bad)
