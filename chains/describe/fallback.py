"""The description built from the operator's own input: every model's last resort, and the body of the
`compose` mode (data/presets.yaml), where the model writes only the opening sentence.

The embedded 135M model rarely writes a description whose every sentence is backed and about the listing; a
paid model sometimes cannot either. The operator then gets their facts as a short listing in plain prose
instead of an empty result: every value is copied from the input, the connecting words are fixed phrasing
(no claim of their own), the notes are the operator's own words, and the text still goes through the claim
check (a note that claims a night flight without the waiver is dropped like any sentence). A caller may pass
`backed` to keep only the equipment and certifications that pass the check one by one, so one option the
rules refuse ("night ops" without a night certification) does not take the others with it.
"""

from __future__ import annotations

from collections.abc import Callable

from chains.claims import money
from chains.describe.schema import DescribeInput

__all__ = ["from_input"]

# A category as a sentence names it ("this drone mapping and surveying service"); others: underscores as spaces
_CATEGORY = {"mapping_surveying": "mapping and surveying"}
# The features the listings use, as a sentence names them; any other: underscores as spaces. Lower case: a
# capitalised word the operator did not write as a name is a name the claim check cannot place (name_unknown).
_FEATURE = {
    "same_day": "same-day service", "weekend_availability": "weekend availability",
    "night_ops": "night operations", "thermal_camera": "a thermal camera", "4k_video": "4K video",
    "fpv": "first-person-view flights", "emergency_callout": "emergency call-outs",
    "multispectral": "multispectral imaging", "rtk_gps": "rtk gps positioning", "live_stream": "live streaming",
    "spray_system": "a spray system", "lidar": "lidar", "indoor_flight": "indoor flights",
    "payload_drop": "payload drops", "tethered": "tethered flights",
}


def _join(items: list[str]) -> str:
    items = [i.replace("_", " ").strip() for i in items if i.strip()]
    if len(items) <= 2:
        return " and ".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _kept(items: list[str], sentence: Callable[[str], str], backed: Callable[[str], bool] | None) -> list[str]:
    return [i for i in items if backed is None or backed(sentence(i.replace("_", " ")))]


def _equipment(items: str) -> str:
    return f"Options include {items}."


def _credentials(items: str) -> str:
    return f"Credentials include {items}."


def from_input(inp: DescribeInput, *, backed: Callable[[str], bool] | None = None) -> str:
    """'Based in Troy, this drone inspection service offers roof inspection and gutter check. ... Request a
    quote on SkyMarket.' — the input's values in fixed sentences, then the operator's notes, then a call to
    action (the caller checks the claims and trims to max_words).

    Args:
        inp: the operator's input (validated: title, city and services are non-empty).
        backed: whether a sentence passes the claim check; given, each feature and certification is kept only
            if a sentence naming it alone passes.
    """
    category = _CATEGORY.get(inp.category, inp.category.replace("_", " "))
    out = [f"Based in {inp.city.strip()}, this drone {category} service offers {_join(inp.services)}."]
    if features := _kept([_FEATURE.get(f.strip().lower(), f) for f in inp.features], _equipment, backed):
        out.append(_equipment(_join(features)))
    if certifications := _kept(inp.certifications, _credentials, backed):
        out.append(_credentials(_join(certifications)))
    if inp.insured:
        out.append("The operator carries liability insurance.")
    if inp.price_from_usd is not None:
        unit = f" per {inp.price_unit}" if inp.price_unit else ""
        out.append(f"Prices start at {money(inp.price_from_usd)}{unit}.")
    if inp.notes.strip():
        note = inp.notes.strip()
        out.append(note if note[-1] in ".!?" else note + ".")
    out.append("Request a quote on SkyMarket.")  # the title heads the listing page: not repeated here
    return " ".join(out)
