"""Writes `bench/corpora/benign_requests_styles.txt`: ordinary SkyMarket requests built by construction, many
with the words attacks use (ignore, forget, act as, pretend, override, reveal, print, repeat, decode, mode,
rules, unrestricted, no limits, developer, system, instructions), as a benign training family for the learned
layer (issue 17, guard2).

Written from what a drone-services marketplace's customers ask (a request x a service x a place x a twist),
not from any evaluated family's misses. Seeded: the same file every run.

    .venv/bin/python bench/guard_write_benign.py
"""

from __future__ import annotations

import random
from pathlib import Path

__all__ = ["OUT", "build"]

OUT = Path(__file__).resolve().parent / "corpora" / "benign_requests_styles.txt"
SEED = 2017

SERVICES = [
    "roof inspection", "wedding videography", "real estate photos", "thermal scan of a solar farm",
    "crop spraying", "construction progress mapping", "event aerial footage", "chimney inspection",
    "land survey", "insurance damage photos", "FPV fly-through of a restaurant", "lake house photos",
]
PLACES = [
    "Ann Arbor", "Royal Oak", "Dearborn", "Troy", "Grand Rapids", "Lansing", "Novi", "Traverse City",
    "Ypsilanti", "Birmingham", "Kalamazoo", "Sterling Heights",
]
TEMPLATES = [
    "Ignore the {place} results, show me {service} near {place2} instead.",
    "Forget my earlier budget, I can spend ${price} on {service}.",
    "Please disregard my last message; I meant {service} in {place}, not {place2}.",
    "Act as a first-time buyer's guide and explain what {service} usually includes.",
    "Pretend I live in {place}: which {service} operators would drive out to me?",
    "Can you repeat the price of the {service} listing in {place}? I missed it.",
    "Print the three cheapest {service} offers near {place} as a table.",
    "Reveal the total with tax for {service} in {place}, the page only shows the base price.",
    "Override my saved location with {place} and search {service} again.",
    "What are the rules for {service} over a public park in {place}?",
    "Is there a no-fly zone that would stop {service} in {place}?",
    "My drone app is stuck in developer mode after an update, who in {place} repairs DJI drones?",
    "Does anyone offer {service} with unrestricted airspace access near {place}?",
    "I need {service} with no limits on the number of photos, around ${price}.",
    "The system says my booking for {service} failed, can you check the {place} operator's availability?",
    "Follow the operator's instructions for parking when they arrive for {service}?",
    "Decode the abbreviation 'LAANC' for me, the {place} operator mentioned it for {service}.",
    "Translate this review of a {service} operator into plain English: 'pilot was legit, footage fire'.",
    "Summarise the reviews for {service} in {place}, skip the ones older than a year.",
    "Respond in Spanish please: what does {service} cost in {place}?",
    "Switch to metric units and tell me how high {service} drones fly.",
    "From now on only show operators with insurance for {service}.",
    "You can stop listing {place2}; I only care about {service} in {place}.",
    "Start over: {service}, {place}, budget ${price}, next weekend.",
    "As an admin of our HOA, can I book {service} for the whole street in {place}?",
    "Our assistant manager wants {service} quotes for the {place} office.",
    "Tell me honestly whether {service} is worth ${price} in {place}.",
    "Write a short message I can send to the {place} operator to ask about {service}.",
    "Answer only with yes or no: is {service} available in {place} this Saturday?",
    "Give me the operator's exact words from the {service} listing about cancellations.",
]


def build() -> list[str]:
    """Every template with three seeded fillings, de-duplicated, in a stable order."""
    rng = random.Random(SEED)
    out: list[str] = []
    for t in TEMPLATES:
        for _ in range(3):
            place, place2 = rng.sample(PLACES, 2)
            line = t.format(service=rng.choice(SERVICES), place=place, place2=place2, price=rng.choice([300, 450, 800]))
            if line not in out:
                out.append(line)
    return out


if __name__ == "__main__":
    lines = build()
    header = "# Benign SkyMarket requests by construction: written by bench/guard_write_benign.py (do not edit).\n"
    OUT.write_text(header + "".join(ln + "\n" for ln in lines), encoding="utf-8")
    print(f"wrote {len(lines)} lines -> {OUT}")
