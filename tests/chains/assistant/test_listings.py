"""chains/assistant/listings.py: the assistant's second door scores a listing's fields whole; the sentence
windows (one embedding run each) are the ingest's, paid once per change, not by a waiting customer."""

from __future__ import annotations

from chains.assistant.listings import ListingScreen
from chains.guard import GuardConfig
from chains.guard.learned import cached, embedding_text
from retrieval.schema import Listing
from settings import ROOT

_DESCRIPTION = ("We fly thermal roof scans across Oakland County. Reports arrive the next business day. "
                "Every pilot holds a Part 107 certificate. Ask about our spring discount for repeat visits.")


def _listing(lid: str, description: str) -> Listing:
    with (ROOT / "data" / "listings.jsonl").open(encoding="utf-8") as fh:
        shipped = Listing.model_validate_json(fh.readline())
    return shipped.model_copy(update={"id": lid, "description": description})


def test_fields_are_scored_whole_and_the_windows_are_left_to_the_ingest() -> None:
    config = GuardConfig()
    assert "listing" in config.window_sources  # the ingest's screen windows listings
    screen = ListingScreen(config)
    description = _DESCRIPTION + " (lst-9001)"
    assert screen.actions([_listing("lst-9001", description)]) == ["allow"]
    text = embedding_text(description)
    assert cached(text) is not None
    assert cached(text, windows=True) is None  # no window of it was embedded
    assert screen.guard.window_sources == config.window_sources - {"listing"}
