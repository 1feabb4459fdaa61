"""Composes listings from sentence fragments, places and per-category price/radius ranges.

Services and features are the vocabulary's (retrieval/vocab): `fragments.yaml` holds the sentences for each
one, and the generator refuses a fragments file that names one the vocabulary does not know (or misses one).
"""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Any

import yaml

from retrieval.places import Gazetteer, Place
from retrieval.schema import CATEGORIES
from retrieval.vocab import FEATURES, SERVICES, implied_features

__all__ = ["allocate", "generate_listings"]

FRAGMENTS = Path(__file__).with_name("fragments.yaml")
_RURAL = {"Livingston", "Monroe", "St. Clair", "Lapeer", "Washtenaw"}


def _weighted(rng: random.Random, items: list[Any], weights: list[float]) -> Any:
    return rng.choices(items, weights=weights, k=1)[0]


def allocate(gaz: Gazetteer, count: int, rng: random.Random) -> list[tuple[str, str]]:
    """(county, category) slots: every category in every county first, the rest weighted by population."""
    counties = list(gaz.service_area)
    pops = {c: sum(p.population or 0 for p in gaz.municipalities(c)) for c in counties}
    slots = [(c, cat) for c in counties for cat in CATEGORIES] if count >= len(counties) * len(CATEGORIES) else []
    for _ in range(count - len(slots)):
        county = _weighted(rng, counties, [pops[c] for c in counties])
        weights = [3.0 if cat in ("real_estate", "aerial_photography", "inspection") else 1.5 for cat in CATEGORIES]
        if county in _RURAL:
            weights[CATEGORIES.index("agriculture")] = 4.0
        slots.append((county, _weighted(rng, list(CATEGORIES), weights)))
    rng.shuffle(slots)
    return slots


def _operator(rng: random.Random, f: dict[str, Any]) -> str:
    o = f["operators"]
    if rng.random() < 0.3:
        return f"{rng.choice(o['surnames'])} {rng.choice(o['person_nouns'])}"
    prefix, noun, suffix = rng.choice(o["prefixes"]), rng.choice(o["nouns"]), rng.choice(o["suffixes"])
    return f"{prefix} {noun}" + ("" if noun.endswith(suffix.strip()) else suffix)  # "Drone Co.", never "Drone Co. Co."


def _title(rng: random.Random, titles: list[str], services: list[str]) -> str:
    # "service|Title" is only for a listing that offers that service: titles must not promise what it lacks
    eligible = [t.partition("|")[2] if "|" in t else t for t in titles if "|" not in t or t.split("|")[0] in services]
    return str(rng.choice(eligible))


def _price(rng: random.Random, lo: float, hi: float, unit: str) -> float:
    if unit == "acre":
        return float(rng.randint(int(lo), int(hi)))
    # log-uniform, rounded the way people price: 149, 175, 249, 1200
    value = math.exp(rng.uniform(math.log(lo), math.log(max(hi, lo + 1))))
    step = 5 if value < 100 else 25 if value < 1000 else 100
    rounded = max(step, round(value / step) * step)
    return float(rounded - 1 if rng.random() < 0.4 and rounded > 20 else rounded)


def _listing(rng: random.Random, f: dict[str, Any], place: Place, category: str, lid: str) -> dict[str, Any]:
    c = f["categories"][category]
    op = _operator(rng, f)
    offered = SERVICES[category]
    services = rng.sample(list(offered), k=rng.randint(2, min(5, len(offered))))
    drawn = set(rng.sample(c["features"], k=rng.randint(0, min(3, len(c["features"])))))
    features = sorted(drawn | implied_features(category, services))
    radius = float(rng.randint(*c["radius"]))
    ctx = {
        "city": place.name,
        "county": place.county,
        "landmark": rng.choice(f["landmarks"][place.county]),
        "drone": rng.choice(f["drones"]),
        "years": rng.randint(2, 11),
        "jobs": rng.choice([150, 200, 300, 400, 500, 750, 1000, 1200]),
        "since": rng.randint(2014, 2023),
        "radius": int(radius),
        "op_short": op.split(" LLC")[0].split(" Inc.")[0],
    }
    insured = rng.random() < 0.85
    middle = [rng.choice(c["services"][s]) for s in services]
    middle += [rng.choice(f["features"][feat]["text"]) for feat in features if rng.random() < 0.8]
    extras = [
        (0.6, c["gear"]),
        (0.55, f["common"]["local"]),
        (0.45, f["common"]["proof"]),
        (0.35, f["common"]["certs_line"]),
        (0.4, f["common"]["insurance"] if insured else f["common"]["uninsured"]),
    ]
    middle += [rng.choice(pool) for p, pool in extras if rng.random() < p]
    rng.shuffle(middle)
    sentences = [rng.choice(c["openers"]), *middle, rng.choice(f["common"]["booking"])]
    text, words = [], 0
    for s in sentences:
        n = len(s.split())
        if words + n > 140:
            continue
        text.append(s.format(**ctx))
        words += n
    while words < 45:  # a thin draw: pad with distinct common lines so every description says something
        s = rng.choice(f["common"]["local"] + f["common"]["proof"]).format(**ctx)
        if s not in text:
            text.insert(-1, s)
            words += len(s.split())
    certs = ["FAA Part 107"]
    certs += [x for x in c["certs"] if rng.random() < 0.45]
    if category == "agriculture" and "FAA Part 137 agricultural aircraft operator" not in certs:
        certs.append("FAA Part 137 agricultural aircraft operator")  # spraying is illegal without it
    if "night_ops" in features:
        certs.append("Night operations (Part 107 night training)")
    unit = _weighted(rng, list(c["units"]), [w for w, _, _ in c["units"].values()])
    jitter = min(0.05, 0.004 + 0.00006 * math.sqrt(place.population or 1000))
    reviews = int(rng.lognormvariate(2.8, 1.0)) + 1
    return {
        "id": lid,
        "title": _title(rng, c["titles"], services).format(**ctx),
        "description": " ".join(text),
        "category": category,
        "services": services,
        "operator": op,
        "city": place.name,
        "county": place.county,
        "lat": round(place.lat + rng.uniform(-jitter, jitter), 5),
        "lon": round(place.lon + rng.uniform(-jitter, jitter) * 1.35, 5),
        "service_radius_miles": radius,
        "price_from_usd": _price(rng, c["units"][unit][1], c["units"][unit][2], unit),
        "price_unit": unit,
        "rating": round(min(5.0, max(1.0, rng.gauss(4.55, 0.35))), 1),
        "review_count": min(reviews, 900),
        "certifications": sorted(set(certs), key=certs.index),
        "insured": insured,
        "features": features,
    }


def generate_listings(
    *, gazetteer: Gazetteer, count: int, seed: int, id_prefix: str = "lst", fragments: Path = FRAGMENTS
) -> list[dict[str, Any]]:
    """Builds `count` listings deterministically.

    Args:
        gazetteer: the service area's places.
        count: how many listings.
        seed: the random seed; the same seed gives the same listings.
        id_prefix: prefix of the ids (`lst-0001`).
        fragments: the YAML file of sentence fragments.
    """
    f = yaml.safe_load(fragments.read_text(encoding="utf-8"))
    _check_fragments(f, fragments)
    rng = random.Random(seed)
    width = max(4, len(str(count)))
    out = []
    for i, (county, category) in enumerate(allocate(gazetteer, count, rng), start=1):
        towns = gazetteer.municipalities(county)
        place = _weighted(rng, towns, [(p.population or 1000) ** 0.8 for p in towns])
        out.append(_listing(rng, f, place, category, f"{id_prefix}-{i:0{width}d}"))
    return out


def _check_fragments(f: dict[str, Any], path: Path) -> None:
    """The fragments must name exactly the vocabulary's categories, services and features."""
    problems = []
    if set(f["categories"]) != set(CATEGORIES):
        problems.append(f"categories differ: {sorted(set(f['categories']) ^ set(CATEGORIES))}")
    if set(f["features"]) != set(FEATURES):
        problems.append(f"features differ: {sorted(set(f['features']) ^ set(FEATURES))}")
    for cat, c in f["categories"].items():
        if cat in SERVICES and set(c["services"]) != set(SERVICES[cat]):
            problems.append(f"{cat}: services differ: {sorted(set(c['services']) ^ set(SERVICES[cat]))}")
        if unknown := sorted(set(c["features"]) - set(FEATURES)):
            problems.append(f"{cat}: unknown features {unknown}")
    if problems:
        raise ValueError(f"{path} is out of step with retrieval/vocab: " + "; ".join(problems))
