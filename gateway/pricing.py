"""The price table (`data/pricing.json`) and the cost of one model call.

Cost = (input - cached) x input price + cached x cached-input price + output x output price, per 1M tokens.
A model the table does not know is *unpriced*: its cost is recorded as 0 with `priced=False` and a warning
(once per model and process), never silently as a real $0. Local models (the `local` list, or any call
flagged local) cost 0 and are priced.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from dataclasses import dataclass
from pathlib import Path

from errors import ConfigError
from livefiles import live_file

__all__ = ["Cost", "LivePriceTable", "Price", "PriceTable", "load_prices", "parse_prices"]

log = logging.getLogger("skymarket.pricing")

_SNAPSHOT = re.compile(r"-\d{4}-\d{2}-\d{2}$|-\d{4}$")  # gpt-4o-mini-2024-07-18, gpt-3.5-turbo-0125


@dataclass(frozen=True)
class Price:
    """USD per 1M tokens."""

    input: float
    cached_input: float
    output: float
    checked: str = ""


@dataclass(frozen=True)
class Cost:
    usd: float
    priced: bool


class PriceTable:
    """Looks prices up by model name; warns once per unknown model."""

    def __init__(self, prices: dict[str, Price], local: set[str] | None = None) -> None:
        self.prices = {k.lower(): v for k, v in prices.items()}
        self.local = {m.lower() for m in (local or set())}
        self._warned: set[str] = set()
        self._lock = threading.Lock()

    def price(self, model: str) -> Price | None:
        """The price of `model`, of its base model for a dated snapshot, or None."""
        name = model.lower().strip()
        if name.startswith("openai/"):
            name = name[len("openai/"):]
        if name in self.prices:
            return self.prices[name]
        base = _SNAPSHOT.sub("", name)
        return self.prices.get(base)

    def is_local(self, model: str) -> bool:
        return model.lower().strip() in self.local

    def cost(self, model: str, *, input_tokens: int, cached_tokens: int = 0, output_tokens: int = 0,
             is_local: bool = False) -> Cost:
        """The cost of one call.

        Args:
            model: the model that answered.
            input_tokens: all prompt tokens, cached ones included.
            cached_tokens: prompt tokens served from the provider's cache.
            output_tokens: completion tokens.
            is_local: the call went to the embedded local model (free).
        """
        if is_local or self.is_local(model):
            return Cost(0.0, True)
        p = self.price(model)
        if p is None:
            self._warn(model)
            return Cost(0.0, False)
        cached = min(max(cached_tokens, 0), input_tokens)
        usd = ((input_tokens - cached) * p.input + cached * p.cached_input + output_tokens * p.output) / 1e6
        return Cost(usd, True)

    def _warn(self, model: str) -> None:
        with self._lock:
            if model in self._warned:
                return
            self._warned.add(model)
        log.warning("model %r is not in the price table: its calls are recorded as unpriced; "
                    "add it to data/pricing.json", model[:80])


def load_prices(path: Path, *, local: set[str] | None = None) -> PriceTable:
    """Reads the price table.

    Args:
        path: the JSON file (`{"models": {name: {input, cached_input, output, checked}}, "local": [...]}`).
        local: more model names that cost nothing (e.g. LOCAL_MODEL_NAME).

    Raises:
        ConfigError: the file is missing or malformed (names the model and field).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read price table {path.name}: {exc}") from None
    return parse_prices(text, path, local=local)


def parse_prices(text: str, path: Path, *, local: set[str] | None = None) -> PriceTable:
    """Validates the price table's text (`path` names it in errors)."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"cannot read price table {path.name}: {exc}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("models") or {}, dict):
        raise ConfigError(f"{path.name}: expected {{\"models\": {{name: prices}}, \"local\": [...]}}")
    prices: dict[str, Price] = {}
    for name, body in (raw.get("models") or {}).items():
        try:
            prices[name] = Price(
                input=float(body["input"]),
                cached_input=float(body.get("cached_input", body["input"])),
                output=float(body["output"]),
                checked=str(body.get("checked", "")),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ConfigError(f"{path.name}: model {name!r}: bad or missing field {exc}") from None
        if min(prices[name].input, prices[name].cached_input, prices[name].output) < 0:
            raise ConfigError(f"{path.name}: model {name!r}: a price is negative")
    return PriceTable(prices, local={*(raw.get("local") or []), *(local or set())})


class LivePriceTable(PriceTable):
    """The price table of a file, re-read after an edit (`livefiles`); a bad edit keeps the last good prices.

    Args:
        path: the JSON file (see `load_prices`); read now, so a bad file is a start-time error.
        local: more model names that cost nothing (e.g. LOCAL_MODEL_NAME).
    """

    def __init__(self, path: Path, *, local: set[str] | None = None) -> None:
        self._extra = {m.lower() for m in (local or set())}
        self._file = live_file(path, lambda text: parse_prices(text, path), kind="pricing")
        try:
            first = self._file.get()
        except OSError as exc:
            raise ConfigError(f"cannot read price table {path.name}: {exc}") from None
        super().__init__(first.prices, local=first.local | self._extra)
        self._in_force = first

    def price(self, model: str) -> Price | None:
        self._sync()
        return super().price(model)

    def is_local(self, model: str) -> bool:
        self._sync()
        return super().is_local(model)

    def _sync(self) -> None:
        table = self._file.get()
        if table is not self._in_force:  # a valid edit: swap the figures (each assignment is atomic)
            self.prices, self.local, self._in_force = table.prices, table.local | self._extra, table
