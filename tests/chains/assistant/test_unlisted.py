"""Services no listing offers (data/unlisted.yaml): read from the file, asked for in a turn (not as what is to
be filmed), and used only while no listing mentions them."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from chains.assistant.unlisted import absent, another_job, load_unlisted, named_unlisted, parse_unlisted, unlisted_text
from errors import ConfigError
from tests.conftest import ROOT

SHOWS = "- name: drone light shows\n  pattern: '\\bdrone\\s+(?:light\\s+)?shows?\\b|\\blight\\s*shows?\\b'\n"


def _listing(description: str) -> SimpleNamespace:
    return SimpleNamespace(title="Sky Events", services=["event filming"], description=description)


def test_the_shipped_file_loads() -> None:
    entries = load_unlisted(ROOT / "data" / "unlisted.yaml")
    assert entries and all(e.name and e.pattern.pattern for e in entries)


@pytest.mark.parametrize(("text", "says"), [
    ("[]x: [", "not valid YAML"),
    ("name: a\npattern: b\n", "expected a list"),
    ("- name: shows\n", "entry 1 needs exactly a non-empty 'name' and 'pattern'"),
    ("- name: shows\n  pattern: '(unclosed'\n", "entry 1 (shows): bad pattern"),
])
def test_a_bad_file_is_refused_with_what_is_wrong(text: str, says: str) -> None:
    with pytest.raises(ConfigError, match=says.replace("(", r"\(").replace(")", r"\)")):
        parse_unlisted(text)


def test_a_service_asked_for_is_named_and_one_to_be_filmed_is_not() -> None:
    entries = parse_unlisted(SHOWS)
    assert named_unlisted(["need a drone show for our company party"], entries) == ("drone light shows",)
    assert named_unlisted(["we want a light show at the wedding"], entries) == ("drone light shows",)
    assert named_unlisted(["can you film the drone light show at our festival?"], entries) == ()
    assert named_unlisted(["photos of the light show please"], entries) == ()
    assert named_unlisted(["roof inspection in troy"], entries) == ()


def test_an_entry_a_listing_mentions_is_not_used() -> None:
    entries = parse_unlisted(SHOWS)
    assert absent(entries, [_listing("We film weddings.")]) == entries
    assert absent(entries, [_listing("We film weddings."), _listing("We fly drone light shows for events.")]) == ()


def test_the_answer_names_what_no_listing_offers() -> None:
    assert unlisted_text(["drone repairs"]) == "No listing on SkyMarket offers drone repairs."
    assert unlisted_text(["a", "b", "c"]) == "No listing on SkyMarket offers a, b or c."


def test_the_file_is_read_and_a_missing_one_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "unlisted.yaml"
    path.write_text(SHOWS)
    assert [e.name for e in load_unlisted(path)] == ["drone light shows"]
    with pytest.raises(ConfigError):
        load_unlisted(tmp_path / "missing.yaml")


@pytest.mark.parametrize(("turn", "name"), [
    ("can someone get my drone down?? its stuck up an oak", "getting a drone back from a tree or a roof"),
    ("the geese at our condo pond are out of control. can a drone chase them off", "chasing off geese or other birds"),
    ("we need pressure washing on the siding of our office", "window, roof or facade cleaning"),
    ("count the geese on our farm", None),  # a wildlife count is listed (thermal imaging)
    ("can a drone wash the windows on our office", "window, roof or facade cleaning"),
    ("need someone to clean all the solar panels at our farm", "window, roof or facade cleaning"),
    ("blended with HDR for clean windows and skies", None),  # clean is no verb here (a listing's own words)
])
def test_the_shipped_entries_read_what_customers_ask(turn: str, name: str | None) -> None:
    entries = load_unlisted(ROOT / "data" / "unlisted.yaml")
    assert named_unlisted([turn], entries) == ((name,) if name else ())


@pytest.mark.parametrize(("turns", "another"), [
    (["we want a light show for our wedding"], False),  # the wedding is what the show is for
    (["a light show for our wedding, and a video of it"], True),
    (["need a wedding videographer", "can they also do a light show?"], True),
    (["drone show at our dealership, plus some photos of the lot"], True),
    (["light show for the 4th, need it filmed too"], True),
])
def test_another_job_is_a_medium_or_service_asked_beside_the_entry(turns: list[str], another: bool) -> None:
    entries = parse_unlisted(SHOWS)
    assert another_job(turns, entries) is another
