"""Sentence windows for the learned layer: how a text is cut, and that a data source's text is scored as
the max over its windows (one ONNX run for a text and its windows, cached) while a chat turn is scored whole."""

from __future__ import annotations

import numpy as np
import pytest

from chains.guard import GuardConfig, learned, screen, screen_many
from chains.guard.learned import load_model
from chains.guard.screen import LEARNED_REASON
from chains.guard.windows import MAX_WINDOWS, MIN_UNIT, units, windows

HIDDEN = "Please disregard the old phone number printed on our flyers."
BENIGN = ("Aerial roof inspections across Oakland County, insured and certified pilots. "
          "Reports are delivered within two days with annotated photos. "
          f"{HIDDEN} Weekend bookings are available on request for a small surcharge.")


class MarkerEmbedder:
    """Stands in for MiniLM: the attack direction for a short text containing 'disregard' (in a long one it is
    diluted), the opposite direction otherwise."""

    def __init__(self) -> None:
        w = load_model().weights
        self.attack = (w / np.linalg.norm(w)).astype(np.float32)
        self.runs, self.texts = 0, 0

    def __call__(self, texts: list[str]) -> np.ndarray:
        self.runs += 1
        self.texts += len(texts)
        return np.stack([self.attack if "disregard" in t and len(t) <= 140 else -self.attack for t in texts])


@pytest.fixture
def embedder(monkeypatch: pytest.MonkeyPatch) -> MarkerEmbedder:
    fake = MarkerEmbedder()
    monkeypatch.setattr(learned._EMBEDDER, "embed", fake)
    monkeypatch.setattr(learned._EMBEDDER, "batcher", lambda text: fake([text])[0])
    monkeypatch.setattr(learned._EMBEDDER, "_cache", type(learned._EMBEDDER._cache)())
    return fake


def test_units_merge_short_sentences_and_windows_pair_neighbours() -> None:
    assert windows("Find me a roof inspector in Troy.") == []  # one unit: the text is its own window
    assert units("Hi. Ok. Find me a roof inspector in Troy next week please.") == [
        "Hi. Ok. Find me a roof inspector in Troy next week please."]
    u = units(BENIGN)
    assert len(u) == 4 and all(len(x) >= MIN_UNIT for x in u) and u[2] == HIDDEN
    w = windows(BENIGN)
    assert w[:4] == u and w[4] == f"{u[0]} {u[1]}" and len(w) == 4 + 3
    assert windows("The first line of the delivery note is here.\nThe second line of the delivery note, longer.") == [
        "The first line of the delivery note is here.", "The second line of the delivery note, longer."]  # two: no pair
    many = " ".join(f"Sentence number {i} of a long description goes here." for i in range(40))
    assert len(windows(many)) == MAX_WINDOWS


def test_a_listing_is_scored_by_its_worst_window_a_chat_turn_whole(embedder: MarkerEmbedder) -> None:
    assert screen(BENIGN, source="listing", config=GuardConfig(learned=False)).action == "allow"  # rules: nothing
    assert screen(BENIGN.replace("disregard", "ignore"), source="listing").action == "allow"
    runs = embedder.runs
    hidden = screen(BENIGN, source="listing")
    assert hidden.action == "flag" and hidden.reasons == [LEARNED_REASON]
    assert embedder.runs == runs + 1  # the text and its seven windows in one run
    assert screen(BENIGN, source="listing").action == "flag" and embedder.runs == runs + 1  # cached by digest
    assert screen(BENIGN, source="chat").action == "allow"  # a chat turn: the whole (diluted) text only
    assert screen(BENIGN, source="listing", config=GuardConfig(window_sources=frozenset())).action == "allow"


def test_windows_cost_one_run_per_batch_and_only_for_window_sources(embedder: MarkerEmbedder) -> None:
    listings = [f"Mapping and surveying in city {i}, insured. Reports within two days, photos included." for i in
                range(3)]
    out = screen_many(listings, config=GuardConfig())
    assert [v.action for v in out] == ["allow"] * 3
    assert (embedder.runs, embedder.texts) == (1, 3 * 3)  # each text and its two units, in one run
    screen_many(listings, source="chat", config=GuardConfig())
    assert (embedder.runs, embedder.texts) == (2, 3 * 3 + 3)  # chat: the whole texts (another cache key)
