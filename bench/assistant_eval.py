"""The assistant on a held-out set of conversations: what it cites, whether its text is grounded, whether it
keeps to the service area, against the bar (the last customer turn sent to /search, top 3, no model).

    .venv/bin/python -m bench.assistant_eval --model local        # the embedded 135M model (llama.cpp)
    .venv/bin/python -m bench.assistant_eval --model fake-openai  # tests/fake_openai.py, an answer of inventions
    .venv/bin/python -m bench.assistant_eval --model hallucinator # in process: true facts mixed with false ones

Conversations: bench/assistant_conversations.yaml (held out), bench/assistant_dev_conversations.yaml
(`--set dev`), bench/assistant_dev2_conversations.yaml (`--set dev2`),
bench/assistant_dev3_conversations.yaml (`--set dev3`), bench/assistant_dev4_conversations.yaml
(`--set dev4`), bench/assistant_dev5_conversations.yaml (`--set dev5`) and
bench/assistant_dev6_conversations.yaml (`--set dev6`), bench/assistant_dev7_conversations.yaml
(`--set dev7`, weighted to questions about the listings already shown) and bench/assistant_dev8_conversations.yaml
(`--set dev8`, eight families of how customers talk: corrections, job sizes, pointers, unanswerable questions,
two needs, rambles, moves out of the area, services not offered) and bench/assistant_dev9_conversations.yaml
(`--set dev9`, eight more families: urgent, business, compare-then-pick, place chains, vague starts, price talk,
feature mixes, heavy typos) and bench/assistant_dev10_conversations.yaml (`--set dev10`, eight more
families: negation, back-to-earlier, long-haul, operator-questions, on-behalf, events, short-replies,
mixed-language-register) and bench/assistant_dev11_conversations.yaml (`--set dev11`, eight more families:
relaxed, vague-place, pronouns, seasonal, question-first, three-needs, precise-specs, mind-flip), each written
blind by someone who had not seen the assistant's code (from the product description, the place names and
the vocabulary only), graded like bench/search_queries.yaml by rules over listing attributes. Work is checked
on the dev sets; figures are reported on the held-out set. A conversation is run turn by turn, as a client would: each
customer turn is sent with the assistant's own earlier answers between them, and the listings the answer to
the turn before the last cited are what was "shown".
Reported, overall and per family:
- precision@3: the share of cited listings that are relevant (grade >= 1) — for the assistant and for the
  bar; a graded conversation that cites nothing counts as precision 0;
- grounding violations: a `$` amount in the text that is no cited listing's price (nor the customer's own
  cap, nor a cited price times an amount of acres or hours the customer wrote), a listing id that is not
  cited, an operator of the index that is not cited — counted by regexes here, independently of the
  assistant's own checker;
- out of the area: nothing cited, `in_service_area: false`, and the text names Detroit Metro;
- small talk: nothing cited;
- how often the model's own text was kept (the rest: the answer built from the listings);
- kept shown (conversations marked `keeps_shown`): right when, with `keeps_shown: true` (the last turn asks
  about the listings shown), the listings cited after the last turn are exactly those cited after the turn
  before it (any order, at least one); with `keeps_shown: false` (the customer asked for something new), when
  at least one cited listing was not shown before, or the search's filters changed (category, place, price
  cap, insurance, features, radius).
"""

from __future__ import annotations

import argparse
import math
import re
import statistics
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import yaml
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, SystemMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from bench.search_common import ROOT, machine
from bench.search_relevance import grade
from chains.assistant import AssistantChain, build_assistant_chain
from chains.prompting import PromptStore
from retrieval.engine import SearchEngine, build_search_engine
from settings import Settings, load_settings

__all__ = ["main"]

CONVERSATIONS = ROOT / "bench" / "assistant_conversations.yaml"  # held out: report on it, never tune on it
DEV = ROOT / "bench" / "assistant_dev_conversations.yaml"  # for development: look at its failures freely
DEV2 = ROOT / "bench" / "assistant_dev2_conversations.yaml"  # a second development set, also written blind
DEV3 = ROOT / "bench" / "assistant_dev3_conversations.yaml"  # a third, blind, weighted to the weak families
DEV4 = ROOT / "bench" / "assistant_dev4_conversations.yaml"  # a fourth, blind: refine-feature and single-turn
DEV5 = ROOT / "bench" / "assistant_dev5_conversations.yaml"  # a fifth, blind: refine-feature, single-turn, follow-up
DEV6 = ROOT / "bench" / "assistant_dev6_conversations.yaml"  # a sixth, blind: corrections, refinements over turns
DEV7 = ROOT / "bench" / "assistant_dev7_conversations.yaml"  # a seventh, blind: questions about the listings shown
DEV8 = ROOT / "bench" / "assistant_dev8_conversations.yaml"  # an eighth, blind: eight families of how customers talk
DEV9 = ROOT / "bench" / "assistant_dev9_conversations.yaml"  # a ninth, blind: eight more families of how customers talk
DEV10 = ROOT / "bench" / "assistant_dev10_conversations.yaml"  # a tenth, blind: eight more families of talk
DEV11 = ROOT / "bench" / "assistant_dev11_conversations.yaml"  # an eleventh, blind: eight more families of talk
INVENTED = ("Great news! SkyHigh Drones (listing lst-9999) can do this from $49 per project and they are fully "
            "insured with a night waiver. Northwind Aerial Imaging also offers it for $35. Call 313-555-0100 today.")
_MONEY = re.compile(r"\$\s?(\d[\d,]*(?:\.\d+)?)")
_ID = re.compile(r"\blst-\d+\b")
_SIZE = re.compile(r"\b(\d[\d,]*(?:\.\d+)?)\s*(?:-\s*)?(?:acres?|ac|hours?|hrs?)\b", re.IGNORECASE)
_JSON_TITLE = re.compile(r'"title": "([^"]+)", "operator": "([^"]+)".*?"price_from_usd": ([\d.]+)')


class Hallucinator(BaseChatModel):
    """Answers from the prompt's own listings, and lies in every other sentence: a right operator with a
    wrong price, an uncited id, a certification nobody listed, an invented company."""

    @property
    def _llm_type(self) -> str:
        return "hallucinator"

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        system = str(messages[0].content) if isinstance(messages[0], SystemMessage) else ""
        found = _JSON_TITLE.findall(system.replace("\\u0026", "&"))
        if not found:
            text = "Happy to help! Maverick Drone Co. serves all of Michigan from $19."
        else:
            (title, operator, price), *rest = found
            wrong = float(price) * 0.8 + 7
            text = (f"{operator} offers {title}, from ${float(price):g}. "
                    f"{operator} can also do it for ${wrong:.0f} this week. "
                    f"It is FAA Part 137 certified and flies at night (listing lst-0001). "
                    f"Skyward Imaging is another option nearby.")
            if rest:
                text += f" {rest[0][1]} is rated highly too."
        return ChatResult(generations=[ChatGeneration(message=AIMessage(text))])


def _run(chain: AssistantChain, turns: list[str]) -> tuple[Any, Any]:
    """The conversation turn by turn, each earlier answer's text between the customer's turns: the answer to
    the last turn, and the answer to the turn before it (None for a single turn)."""
    messages: list[dict[str, str]] = []
    before = out = None
    for t in turns:
        before = out
        messages.append({"role": "user", "content": t})
        out = chain.invoke({"messages": list(messages)})
        messages.append({"role": "assistant", "content": out.text})
    return out, before


def _filters(out: Any) -> tuple[Any, ...] | None:
    it = out.interpreted
    if it is None:
        return None
    return (it.category, it.place.name if it.place else None, it.max_price, bool(it.insured),
            tuple(sorted(it.features)), it.radius_miles)


def _kept_shown(conv: dict[str, Any], out: Any, before: Any) -> bool:
    """See the module docstring (kept shown)."""
    shown = {x.id for x in before.listings} if before is not None else set()
    cited = {x.id for x in out.listings}
    if conv["keeps_shown"]:
        return bool(cited) and cited == shown
    return bool(cited - shown) or before is None or _filters(out) != _filters(before)


def _sizes(turns: list[str]) -> set[float]:
    """Every amount of acres or hours the customer wrote: a cited price times one of them is the listing's own
    price for the job they described (read here with a regex of its own, not the assistant's reading)."""
    return {float(n.replace(",", "")) for t in turns for n in _SIZE.findall(t)}


def _violations(text: str, output: Any, operators: set[str], cap: float | None,
                sizes: frozenset[float] | set[float] = frozenset()) -> list[str]:
    cited = output.listings
    prices = {x.price_from_usd for x in cited} | ({cap} if cap is not None else set())
    prices |= {x.price_from_usd * n for x in cited for n in sizes}
    ids = {x.id for x in cited}
    names = {x.operator for x in cited} | {x.title for x in cited}  # a cited title may hold another's name
    bad = [f"price ${m}" for m in _MONEY.findall(text)
           if not any(abs(float(m.replace(",", "")) - p) < 0.5 for p in prices)]
    bad += [f"id {i}" for i in _ID.findall(text) if i not in ids]
    rest = text
    for name in sorted(names, key=len, reverse=True):  # a cited name may contain a shorter one
        rest = rest.replace(name, " ")
    bad += [f"operator {o}" for o in operators if o in rest]
    return bad


@contextmanager
def _model(kind: str, settings: Settings) -> Iterator[tuple[Any, Settings]]:
    """The chat model to evaluate, and the settings it runs with."""
    from chains.models import build_chat_model

    if kind == "hallucinator":
        yield Hallucinator(), settings
    elif kind == "fake-openai":
        from tests.fake_openai import FakeOpenAI, Reply

        fake = FakeOpenAI().start()
        fake.always("gpt-4o-mini", Reply(INVENTED))
        s = load_settings(openai_api_key="sk-eval-" + "0" * 40, openai_base_url=fake.url, local_model_enabled=False,
                          describe_moderation="local", ai_max_retries=0)
        try:
            yield build_chat_model(settings=s, use_case="chat", local_base_url=None), s
        finally:
            fake.stop()
    else:
        from chains.local_llm import LocalModelServer

        server = LocalModelServer(model_path=settings.local_model_path, sha256=settings.local_model_sha256,
                                  threads=settings.local_model_threads, ctx=settings.local_model_ctx)
        server.start()
        try:
            yield build_chat_model(settings=settings, use_case="chat", local_base_url=server.base_url), settings
        finally:
            server.stop()


def _bar(engine: SearchEngine, turn: str) -> list[Any]:
    return [h.listing for h in engine.search(turn, limit=3).hits]


def _precision(engine: SearchEngine, conv: dict[str, Any], listings: list[Any]) -> float:
    if not listings:
        return 0.0
    return sum(grade(engine, conv, x) >= 1 for x in listings) / len(listings)


def evaluate(chain: AssistantChain, engine: SearchEngine, conversations: list[dict[str, Any]]) -> dict[str, Any]:
    """Runs every conversation; returns the per-conversation records."""
    operators = {x.operator for x in engine.index.listings}
    records = []
    for conv in conversations:
        started = time.perf_counter()
        out, before = _run(chain, conv["turns"])
        seconds = time.perf_counter() - started
        rec: dict[str, Any] = {"id": conv["id"], "family": conv["family"], "seconds": seconds,
                               "cited": len(out.listings), "violations": _violations(
                                   out.text, out, operators, out.interpreted.max_price if out.interpreted else None,
                                   _sizes(conv["turns"])),
                               "kept": not any(f.startswith(("replaced", "added")) for f in out.flags)
                               and bool(out.listings or out.interpreted is None)}
        if "keeps_shown" in conv:
            rec["keeps_shown"], rec["kept_shown"] = conv["keeps_shown"], _kept_shown(conv, out, before)
        if conv.get("out_of_area"):
            rec["area_ok"] = (not out.listings and out.in_service_area is False and "Detroit Metro" in out.text)
        elif conv.get("no_listings"):
            rec["quiet_ok"] = not out.listings
        else:
            rec["precision"] = _precision(engine, conv, out.listings)
            rec["bar"] = _precision(engine, conv, _bar(engine, conv["turns"][-1]))
        records.append(rec)
    return {"records": records}


def _mean(values: list[float]) -> float:
    return statistics.mean(values) if values else math.nan


def report(records: list[dict[str, Any]], *, name_misses: bool = True) -> None:
    """Prints the figures; `name_misses` also lists the conversations below 1 (development sets only: a held-out
    conversation's id is the first step to tuning on it)."""
    graded = [r for r in records if "precision" in r]
    print(f"{len(records)} conversations ({len(graded)} graded)")
    print(f"precision@3: assistant {_mean([r['precision'] for r in graded]):.3f}, "
          f"bar (last turn to /search) {_mean([r['bar'] for r in graded]):.3f}")
    violations = [v for r in records for v in r["violations"]]
    print(f"grounding violations: {len(violations)} {violations[:5]}")
    area = [r["area_ok"] for r in records if "area_ok" in r]
    quiet = [r["quiet_ok"] for r in records if "quiet_ok" in r]
    print(f"out of the area answered as such: {sum(area)}/{len(area)}; small talk cited nothing: "
          f"{sum(quiet)}/{len(quiet)}")
    print(f"model text kept: {sum(r['kept'] for r in records)}/{len(records)}; "
          f"seconds per conversation p50 {statistics.median(r['seconds'] for r in records):.2f}")
    marked = [r for r in records if "kept_shown" in r]
    if marked:
        keep = [r["kept_shown"] for r in marked if r["keeps_shown"]]
        new = [r["kept_shown"] for r in marked if not r["keeps_shown"]]
        print(f"kept shown: {sum(keep) + sum(new)}/{len(marked)} right (kept when asked about them "
              f"{sum(keep)}/{len(keep)}, searched again when asked for new {sum(new)}/{len(new)})")
    by: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        by[r["family"]].append(r)
    print(f"{'family':<22}{'n':>3}  {'assistant':>9}  {'bar':>6}  violations")
    for family, rs in sorted(by.items()):
        g = [r for r in rs if "precision" in r]
        a = f"{_mean([r['precision'] for r in g]):.3f}" if g else "-"
        b = f"{_mean([r['bar'] for r in g]):.3f}" if g else "-"
        print(f"{family:<22}{len(rs):>3}  {a:>9}  {b:>6}  {sum(len(r['violations']) for r in rs)}")
    misses = [r for r in graded if r["precision"] < 1]
    if not name_misses:
        print(f"{len(misses)} graded conversations below 1 (not named: held-out set)")
        return
    for r in misses:
        print(f"  below 1: {r['id']} precision {r['precision']:.2f} (bar {r['bar']:.2f})")
    for r in marked:
        if not r["kept_shown"]:
            print(f"  shown set wrong: {r['id']} ({'should keep' if r['keeps_shown'] else 'should search again'})")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", choices=["local", "fake-openai", "hallucinator"], default="hallucinator")
    p.add_argument("--set", choices=["held-out", "dev", "dev2", "dev3", "dev4", "dev5", "dev6", "dev7",
                                         "dev8", "dev9", "dev10", "dev11"],
                   default="held-out",
                   help="held-out (reported), or dev / dev2 / ... / dev11 (blind sets to look at while building)")
    args = p.parse_args(argv)
    base = load_settings(local_model_enabled=True, describe_moderation="local")
    dev = {"dev": DEV, "dev2": DEV2, "dev3": DEV3, "dev4": DEV4, "dev5": DEV5, "dev6": DEV6, "dev7": DEV7, "dev8": DEV8,
           "dev9": DEV9, "dev10": DEV10, "dev11": DEV11}
    path = dev.get(args.set, CONVERSATIONS)
    conversations = yaml.safe_load(path.read_text(encoding="utf-8"))
    with _model(args.model, base) as (model, settings):
        engine = build_search_engine(settings=settings)
        engine.warm()
        chain = build_assistant_chain(settings=settings, model=model, engine=engine,
                                      prompts=PromptStore(settings.prompts_dir))
        result = evaluate(chain, engine, conversations)
    print(f"machine: {machine()}; model: {args.model}; conversations: {path.name}")
    report(result["records"], name_misses=args.set != "held-out")


if __name__ == "__main__":
    main()
