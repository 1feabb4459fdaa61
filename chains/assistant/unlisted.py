"""Services a customer asks for that no listing offers ("a drone show for our company party"), from
data/unlisted.yaml: the answer says so instead of showing listings that do something else.

An entry applies only while no listing in the index in force mentions it (its title, services or description
matched by the entry's own pattern): once an operator lists a light show, the search finds that listing, and
the assistant says nothing of the entry.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from errors import ConfigError
from livefiles import live_file

__all__ = ["Unlisted", "absent", "another_job", "load_unlisted", "named_unlisted", "parse_unlisted", "unlisted_text"]


@dataclass(frozen=True)
class Unlisted:
    """A service no listing may offer: how the answer names it, and the words that ask for it."""

    name: str
    pattern: re.Pattern[str]

    def in_listing(self, listing: Any) -> bool:
        text = " ".join([listing.title, *listing.services, listing.description])
        return self.pattern.search(text) is not None


def parse_unlisted(text: str, source: str = "unlisted.yaml") -> tuple[Unlisted, ...]:
    """The entries of the file's text.

    Raises:
        ConfigError: not a list of {name, pattern}, or a pattern that is no regular expression (named).
    """
    try:
        raw = yaml.safe_load(text) or []
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML ({exc})") from None
    if not isinstance(raw, list):
        raise ConfigError(f"{source}: expected a list of entries with 'name' and 'pattern'")
    out = []
    for i, entry in enumerate(raw, 1):
        if not isinstance(entry, dict) or set(entry) != {"name", "pattern"} or not all(
                isinstance(entry[k], str) and entry[k].strip() for k in ("name", "pattern")):
            raise ConfigError(f"{source}: entry {i} needs exactly a non-empty 'name' and 'pattern'")
        try:
            pattern = re.compile(entry["pattern"], re.IGNORECASE)
        except re.error as exc:
            raise ConfigError(f"{source}: entry {i} ({entry['name']}): bad pattern ({exc})") from None
        out.append(Unlisted(entry["name"].strip(), pattern))
    return tuple(out)


def load_unlisted(path: Path) -> tuple[Unlisted, ...]:
    """The entries in force (re-read after an edit; a bad edit keeps the last good version).

    Raises:
        ConfigError: at the first read, the file is missing or malformed.
    """
    try:
        return live_file(path, lambda text: parse_unlisted(text, path.name), kind="unlisted", hot=True).get()
    except OSError:
        raise ConfigError(f"no unlisted-services file at {path}") from None


def absent(entries: Sequence[Unlisted], listings: Sequence[Any]) -> tuple[Unlisted, ...]:
    """The entries no listing mentions (computed once per index and file version: it reads every listing).

    Args:
        entries: `load_unlisted()`.
        listings: every listing in the index in force.
    """
    return tuple(e for e in entries if not any(e.in_listing(x) for x in listings))


def named_unlisted(turns: Sequence[str], entries: Sequence[Unlisted]) -> tuple[str, ...]:
    """The names of the entries the turns ask for.

    Args:
        turns: the customer's turns of the request.
        entries: `absent()`: those no listing mentions.
    """
    return tuple(e.name for e in entries if any(_asked(e, t) for t in turns))


# what makes the service the subject of another job: "film the drone light show at our festival"
_SUBJECT = re.compile(r"\b(?:film\w*|shoot\w*|record\w*|captur\w*|photo\w*|pictures?|video\w*|cover\w*|"
                      r"stream\w*|footage)\b(?:\W+\w+){0,3}\W*$", re.IGNORECASE)


def _asked(entry: Unlisted, turn: str) -> bool:
    return any(not _SUBJECT.search(turn[: m.start()]) for m in entry.pattern.finditer(turn))


# a job a listing could do, asked beside the one no listing offers: "... and a video of it", "plus some photos"
_JOB = re.compile(r"\b(?:photo\w*|pics?|pictures?|video\w*|film(?:s|ed|ing)?|footage|record(?:ed|ing)?|"
                  r"inspect\w*|survey\w*|map(?:s|ped|ping)?|scan(?:s|ned|ning)?|thermal|infrared|spray\w*|"
                  r"scout\w*|deliver\w*|lessons?|training|class(?:es)?|courses?|measur\w*|imaging)\b", re.IGNORECASE)


def another_job(turns: Sequence[str], entries: Sequence[Unlisted]) -> bool:
    """Whether the turns ask for a job a listing could do besides the entries': a medium or a service by its
    word. A category read only from what the job is about ("pressure washing ... the siding": inspection; "a
    light show for our wedding": videography; "chase off the geese": wildlife counts) is no such ask.

    Args:
        turns: the customer's turns of the request.
        entries: the entries the turns name (`named_unlisted`'s).
    """
    for turn in turns:
        rest = turn
        for e in entries:
            rest = e.pattern.sub(" ", rest)
        if _JOB.search(rest):
            return True
    return False


def unlisted_text(names: Sequence[str]) -> str:
    """'No listing on SkyMarket offers drone light shows.'"""
    what = names[0] if len(names) == 1 else ", ".join(names[:-1]) + f" or {names[-1]}"
    return f"No listing on SkyMarket offers {what}."
