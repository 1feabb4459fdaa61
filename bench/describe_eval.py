"""What an operator gets from `/describe`: listings of data/listings.jsonl as operator inputs, scored by code.

    .venv/bin/python -m bench.describe_eval --split dev                   # tune on these
    .venv/bin/python -m bench.describe_eval --split heldout -n 3          # report these (never tune on them)
    .venv/bin/python -m bench.describe_eval --split heldout --presets FILE --out outputs.jsonl

The inputs are the listings' own facts (title, category, city, services, certifications, insured, features,
price), no notes, default tone and `max_words` (120). The split is by category, fixed before the first
measurement: `DEV` categories are the ones to read and tune on; `HELD_OUT` ones are reported, their outputs read
only after tuning. Each item goes through the describe runnable in this process (as `services.py` builds it,
with the listings' catalogue), against the embedded model (`--backend local`: llama.cpp started here, one
thread) or an already-running OpenAI-compatible server (`--url`).

The metrics (functions below, fixed before the first measurement):

- grounded: the text is not empty and the claim check finds nothing in it (data/claims.yaml, the catalogue).
- coverage: the city; at least two of the services (all when fewer); the price with its unit when given;
  insurance when insured. A service counts when each of its words (4+ letters) is in the text by its first
  five letters ("inspections" covers "inspection").
- form: no field label ("Services:", "Equipment and features:"), no echo of the instructions, no repeated
  sentence, at most max_words words, a call to action.
- nonsense: the share of content words (3+ letters, not a function word) found neither in the input nor in
  `TRADE`, a small general vocabulary of the trade (by first five letters). The 135M model's failures that no
  claim rule can see ("one of the most reputable companies", "we can't find the image for this product") are
  made of words from neither; a listing that sticks to the operator's facts is not. It is a proxy: a paid
  model's richer wording scores a little worse, so it is compared for one model, before against after.
  `nonsense>0.2` is the share of outputs above 20 %.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from chains.claims import money

__all__ = ["DEV", "HELD_OUT", "coverage", "form", "inputs", "main", "nonsense", "score"]

ROOT = Path(__file__).resolve().parent.parent
DEV = ("aerial_photography", "inspection", "real_estate", "agriculture")
HELD_OUT = ("videography", "thermal_imaging", "mapping_surveying", "delivery", "training", "public_safety",
            "construction")
FIELDS = ("title", "category", "city", "services", "certifications", "insured", "features", "price_from_usd",
          "price_unit")

_WORD = re.compile(r"[a-z]+")
_LABEL = re.compile(
    r"\b(title|category|based in|services|certifications|insured|equipment and (?:features|options)|equipment"
    r"|features|price from(?: \(usd\))?|price unit|operator'?s notes|notes)\s*:", re.IGNORECASE)
_ECHO = re.compile(
    r"facts about|listing description|reply with|call to action|the facts|do not mention|plain prose|tone\s*:"
    r"|superlatives|at most \d+ words|\bnone\b|example (?:listing|input|description)", re.IGNORECASE)
_CTA = re.compile(
    r"\b(request|get|ask for)\b[^.!?]{0,20}\bquote|\bbook\b|\bbooking\b|\bcontact\b|reach out|get in touch"
    r"|\bcall us\b|\bmessage us\b|\bschedule\b", re.IGNORECASE)
_SENTENCE = re.compile(r"[^.!?]+[.!?]?")

STOP = frozenset("""
a about above after again against all also am an and any are as at be because been before being below between
both but by can could did do does doing down during each few for from further had has have having he her here
hers him his how i if in into is it its itself just let me more most my no nor not now of off on once only or
other our ours out over own same she should so some such than that the their them then there these they this
those through to too under until up very was we were what when where which while who whom why will with would
you your yours yourself us get gets got one ones every many much may might must shall well yes via per etc
""".split())  # noqa: SIM905 (a word list reads better as text)

# The trade's general words (by first five letters), fixed before the first measurement: what any honest
# drone-service listing may say without it being one of the operator's facts.
TRADE = frozenset("""
drone drones aerial air airborne flight flights fly flying flown pilot pilots operator operators uav uas faa
certified certification licensed insured insurance liability service services offer offers offering provide
provides providing customer customers client clients business businesses homeowner homeowners owner owners
property properties home homes house houses project projects job jobs quote quotes request requests book
booking contact skymarket marketplace detroit metro michigan county counties local locally area areas nearby
community communities neighborhood price prices pricing start starting starts rate rates hour hours day days
acre acres delivery session sessions flat photo photos photograph photographs photography video videos
videography footage image images imagery camera cameras thermal lidar map maps mapping survey surveys surveying
inspection inspections inspect inspecting roof roofs data report reports deliver delivers delivered training
train course courses class classes safety public agriculture agricultural crop crops farm farms farmer farmers
field fields construction site sites progress real estate listing listings equipment feature features option
options team professional friendly premium quality high resolution detailed clear fast quick same next
schedule scheduled help helps need needs ready work works based serving serve serves covering cover covers
across around throughout view views shot shots plan plans planning capture captures capturing record recording
results result time times today now new want looking look whether event events support experienced
""".split())  # noqa: SIM905 (a word list reads better as text)


def _stems(text: str) -> set[str]:
    return {w[:5] for w in _WORD.findall(text.lower())}


def _input_text(inp: dict[str, Any]) -> str:
    parts = [inp["title"], inp["city"], inp["category"].replace("_", " "), *inp["services"],
             *inp.get("certifications", []), *(f.replace("_", " ") for f in inp.get("features", [])),
             inp.get("notes", ""), inp.get("price_unit") or ""]
    return " ".join(parts)


def coverage(text: str, inp: dict[str, Any]) -> dict[str, bool]:
    """Which of the operator's key facts the text carries (only those that apply to this input).

    Args:
        text: the description.
        inp: the operator's input (a dict of `DescribeInput` fields).
    """
    low, said = text.lower(), _stems(text)
    out = {"city": inp["city"].lower() in low}
    services = inp["services"]
    found = sum(all(w[:5] in said for w in _WORD.findall(s.lower()) if len(w) >= 4) for s in services)
    out["services"] = found >= min(2, len(services))
    if inp.get("price_from_usd") is not None:
        has_price = money(inp["price_from_usd"]).lower() in low.replace(".00", "")
        unit = inp.get("price_unit")
        out["price"] = has_price and (unit is None or re.search(rf"\b{unit}s?\b", low) is not None)
    if inp.get("insured"):
        out["insured"] = "insur" in low
    return out


def form(text: str, inp: dict[str, Any]) -> dict[str, bool]:
    """Whether the text reads as a listing: each check true when it passes.

    Args:
        text: the description.
        inp: the operator's input (for `max_words`, default 120).
    """
    sentences = [re.sub(r"[^a-z0-9 ]", "", s.lower()).strip() for s in _SENTENCE.findall(text)]
    sentences = [s for s in sentences if s]
    return {
        "no_labels": _LABEL.search(text) is None,
        "no_echo": _ECHO.search(text) is None,
        "no_repeat": len(sentences) == len(set(sentences)),
        "length": 0 < len(text.split()) <= int(inp.get("max_words") or 120),
        "call_to_action": _CTA.search(text) is not None,
    }


def nonsense(text: str, inp: dict[str, Any]) -> float:
    """The share of the text's content words found neither in the input nor in `TRADE` (0.0 for no words).

    Args:
        text: the description.
        inp: the operator's input.
    """
    words = [w for w in _WORD.findall(text.lower()) if len(w) >= 3 and w not in STOP]
    if not words:
        return 0.0
    known = _stems(_input_text(inp)) | {w[:5] for w in TRADE}
    return sum(w[:5] not in known for w in words) / len(words)


def score(text: str, inp: dict[str, Any], *, findings: int) -> dict[str, Any]:
    """Every metric of one output.

    Args:
        text: the description.
        inp: the operator's input.
        findings: how many findings the claim check has on `text`.
    """
    cov, frm = coverage(text, inp), form(text, inp)
    return {"grounded": bool(text) and findings == 0, "coverage": all(cov.values()) and bool(text),
            "coverage_parts": cov, "form": all(frm.values()), "form_parts": frm, "nonsense": nonsense(text, inp)}


def inputs(categories: tuple[str, ...], per_category: int, path: Path = ROOT / "data" / "listings.jsonl",
           ) -> list[tuple[str, dict[str, Any]]]:
    """The first `per_category` listings of each category as operator inputs: (listing id, input)."""
    taken: dict[str, int] = {}
    out: list[tuple[str, dict[str, Any]]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        cat = row["category"]
        if cat in categories and taken.get(cat, 0) < per_category:
            taken[cat] = taken.get(cat, 0) + 1
            out.append((row["id"], {k: row[k] for k in FIELDS}))
    return sorted(out, key=lambda item: (categories.index(item[1]["category"]), item[0]))


@contextmanager
def _local_model(url: str | None) -> Iterator[str]:
    if url:
        yield url
        return
    from chains.local_llm import LocalModelServer
    from settings import Settings

    s = Settings(_env_file=None)  # type: ignore[call-arg]
    server = LocalModelServer(model_path=s.local_model_path, sha256=s.local_model_sha256, threads=1,
                              ctx=s.local_model_ctx)
    server.start()
    try:
        yield server.base_url
    finally:
        server.stop()


def _chain(local_url: str, presets: Path | None, cache_dir: str) -> Any:
    from chains.claims import Catalog
    from chains.describe import build_describe_chain
    from chains.models import build_chat_model
    from chains.prompting import PromptStore
    from retrieval.ingest.core import read_listings
    from retrieval.places import load_gazetteer
    from settings import Settings

    extra: dict[str, Any] = {"presets_file": presets} if presets else {}
    settings = Settings(_env_file=None, local_model_url=local_url, describe_moderation="local",  # type: ignore[call-arg]
                        describe_cache_path=Path(cache_dir) / "cache.db", describe_cache_enabled=False, **extra)
    listings = read_listings((ROOT / "data" / "listings.jsonl").read_text(encoding="utf-8").splitlines())[0]
    g = load_gazetteer(settings.places_file)
    catalog = Catalog.from_listings(listings, places=[p.name for p in g.places] + [o.name for o in g.outside])
    model = build_chat_model(settings=settings, use_case="describe", local_base_url=local_url)
    chain = build_describe_chain(settings=settings, prompts=PromptStore(settings.prompts_dir), model=model,
                                 local_base_url=local_url, catalog=lambda: catalog)
    return chain, settings, catalog


def _row(lid: str, inp: dict[str, Any], out: Any, seconds: float, settings: Any, catalog: Any) -> dict[str, Any]:
    from chains.claims import check, load_claims
    from chains.describe import area_places
    from chains.describe.schema import canonical, sources_of

    found = check(out.description, sources_of(canonical(inp), area_places(settings.places_file)),
                  load_claims(settings.describe_claims_file), feature="describe", catalog=catalog)
    return {"id": lid, "category": inp["category"], "description": out.description, "flags": out.flags,
            "model": out.model, "seconds": round(seconds, 2), **score(out.description, inp, findings=len(found))}


def summary(rows: list[dict[str, Any]]) -> dict[str, float]:
    """The shares over all rows (and the mean of `nonsense` and of the seconds per item)."""
    n = max(1, len(rows))

    def share(pred: Any) -> float:
        return round(sum(1 for r in rows if pred(r)) / n, 3)

    return {
        "items": len(rows), "grounded": share(lambda r: r["grounded"]), "coverage": share(lambda r: r["coverage"]),
        "form": share(lambda r: r["form"]), "nonsense": round(sum(r["nonsense"] for r in rows) / n, 3),
        "nonsense>0.2": share(lambda r: r["nonsense"] > 0.2),
        "replaced": share(lambda r: any(f.startswith("replaced:") for f in r["flags"])),
        "s/item": round(sum(r["seconds"] for r in rows) / n, 1),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--split", choices=("dev", "heldout"), default="dev")
    p.add_argument("-n", type=int, default=3, help="listings per category (the first of each in the file)")
    p.add_argument("--presets", type=Path, default=None, help="a presets file to use instead of data/presets.yaml")
    p.add_argument("--url", default=None, help="an already-running local model's /v1 URL (default: start one)")
    p.add_argument("--out", type=Path, default=None, help="write each output and its scores here (JSON lines)")
    p.add_argument("--label", default="", help="a name for this run in the result line")
    args = p.parse_args(argv)
    items = inputs(DEV if args.split == "dev" else HELD_OUT, args.n)
    rows: list[dict[str, Any]] = []
    with _local_model(args.url) as url, tempfile.TemporaryDirectory() as tmp:
        chain, settings, catalog = _chain(url, args.presets, tmp)
        for lid, inp in items:
            t0 = time.perf_counter()
            out = chain.invoke(inp)
            rows.append(_row(lid, inp, out, time.perf_counter() - t0, settings, catalog))
            print(f"{lid} grounded={rows[-1]['grounded']} coverage={rows[-1]['coverage']} form={rows[-1]['form']}"
                  f" nonsense={rows[-1]['nonsense']:.2f} {rows[-1]['seconds']}s", file=sys.stderr)
    if args.out:
        args.out.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    s = summary(rows)
    print("| run | split | " + " | ".join(s) + " |")
    print(f"| {args.label or '-'} | {args.split} | " + " | ".join(str(v) for v in s.values()) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
