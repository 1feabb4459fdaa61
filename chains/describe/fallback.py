"""The description built from the operator's own input, when no model text survives the checks.

The embedded 135M model rarely writes a description whose every sentence is backed and about the listing; a
paid model sometimes cannot either. The operator then gets their facts as plain sentences instead of an empty
result: every value is copied from the input, the notes are the operator's own words, and the text still goes
through the claim check (a note that claims a night flight without the waiver is dropped like any sentence).
"""

from __future__ import annotations

from chains.claims import money
from chains.describe.schema import DescribeInput

__all__ = ["from_input"]


def _join(items: list[str]) -> str:
    items = [i.replace("_", " ") for i in items if i.strip()]
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def from_input(inp: DescribeInput) -> str:
    """'Roof & Gutter Checks by Drone: drone inspection based in Troy. Services: roof inspection and gutter
    check. ...' — the input's fields as sentences, then the operator's notes (the caller trims to max_words).

    Args:
        inp: the operator's input (validated: title, city and services are non-empty).
    """
    out = [f"{inp.title.strip().rstrip('.')}: drone {inp.category.replace('_', ' ')} based in {inp.city.strip()}.",
           f"Services: {_join(inp.services)}."]
    if inp.features:
        out.append(f"Equipment and options: {_join(inp.features)}.")
    if inp.certifications:
        out.append(f"Certifications: {_join(inp.certifications)}.")
    if inp.insured:
        out.append("Insured.")
    if inp.price_from_usd is not None:
        out.append(f"From {money(inp.price_from_usd)}{f' per {inp.price_unit}' if inp.price_unit else ''}.")
    if inp.notes.strip():
        out.append(inp.notes.strip())
    out.append("Request a quote on SkyMarket.")
    return " ".join(out)
