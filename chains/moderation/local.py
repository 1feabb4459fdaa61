"""The offline check: regex categories from `data/moderation.yaml`, re-read after an edit."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from chains.guard.fold import fold
from chains.guard.normalize import normalize
from chains.moderation.verdict import Verdict, combine
from errors import ConfigError
from livefiles import live_file

__all__ = ["LocalModerator", "parse_rules"]


class LocalModerator:
    """Regex categories from `data/moderation.yaml` (its header says what they cover and what they miss)."""

    name = "local"

    def __init__(self, rules_file: Path) -> None:
        self.rules_file = rules_file
        try:
            self.rules  # noqa: B018 -- the first read: a bad file is a start-time error
        except OSError as exc:
            raise ConfigError(f"cannot load moderation rules {rules_file}: {exc}") from None

    @property
    def rules(self) -> dict[str, list[re.Pattern[str]]]:
        """The categories' patterns in force: the file is re-read after an edit; a bad edit keeps the last good."""
        return live_file(self.rules_file, lambda text: parse_rules(text, self.rules_file), kind="moderation").get()

    def check(self, texts: list[str]) -> Verdict:
        return combine(self.check_each(texts))

    async def acheck(self, texts: list[str]) -> Verdict:
        return self.check(texts)

    def check_each(self, texts: list[str]) -> list[Verdict]:
        rules = self.rules
        out: list[Verdict] = []
        for text in texts:
            folded = fold(normalize(text).text)
            cats = tuple(c for c, patterns in rules.items() if any(p.search(folded) for p in patterns))
            out.append(Verdict(bool(cats), cats, "local"))
        return out

    async def acheck_each(self, texts: list[str]) -> list[Verdict]:
        return self.check_each(texts)

    async def aclose(self) -> None:
        return None


def parse_rules(text: str, path: Path) -> dict[str, list[re.Pattern[str]]]:
    """Validates `data/moderation.yaml`'s text: `categories: {name: [regex, ...]}`."""
    try:
        raw = yaml.safe_load(text) or {}
        return {
            str(cat): [re.compile(p, re.IGNORECASE) for p in patterns]
            for cat, patterns in (raw.get("categories") or {}).items()
        }
    except (yaml.YAMLError, re.error, AttributeError, TypeError) as exc:
        raise ConfigError(f"cannot load moderation rules {path}: {exc}") from None
