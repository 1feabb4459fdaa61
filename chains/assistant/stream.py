"""One assistant stream's state: the listings first (object view), then the text one checked sentence at a
time, then what follows it (the listings' answer if too little of the model's was backed; cards or flags)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from langchain_core.runnables.utils import AddableDict

from chains.assistant import answer
from chains.assistant.grounding import SentenceGate
from chains.assistant.steps import Found, Steps, removed
from chains.moderation import Verdict

__all__ = ["StreamState"]


@dataclass
class StreamState:
    """One stream's state: what the search found, the sentence gate, the flags, the text pieces sent."""

    steps: Steps
    found: Found
    gate: SentenceGate | None
    flags: list[str] = field(default_factory=list)
    texts: int = 0
    noted: bool = False  # `found.note` went out before the model's sentences

    def _piece(self, text: str) -> Any:
        piece = text if self.texts == 0 else " " + text
        self.texts += 1
        return AddableDict(text=piece) if self.steps.view == "object" else piece

    def head(self) -> list[Any]:
        """The first chunk of the object view: the listings, the area and the search (none for the text view);
        then, before the model's sentences, why these are other listings than those shown (`found.note`)."""
        out = [self.steps.head(self.found)] if self.steps.view == "object" else []
        if self.found.note and self.found.final is None and self.gate is not None:
            out.append(self._piece(self.found.note))
            self.noted = True
        return out

    def moderated(self, sentence: str, verdict: Verdict) -> Any | None:
        """The chunk of a sentence the gate let out, unless moderation refuses it (that ends the model's text)."""
        if verdict.flagged and self.gate is not None:
            self.gate.take_back(sentence)
            self.flags.append("moderation: the answer was flagged (" + ", ".join(verdict.categories) + ") and cut")
            return None
        return self._piece(sentence)

    def tail(self) -> list[Any]:
        """After the model's sentences: the data's answer if too few went out, then the cards or the flags."""
        out: list[Any] = []
        sent = " ".join(self.gate.sent) if self.gate is not None else ""
        if self.gate is not None:
            self.flags.extend(removed(self.gate))
        if self.found.final is not None or not self.steps.usable(self.found, sent):
            if sent:
                self.flags.append("added the listings' answer: too little of the model's answer was backed")
            out.append(self._piece(self.steps.fallback_text(self.found, note=not self.noted)))
        elif extra := self.steps.addendum(self.found, sent):
            out.append(self._piece(extra))
        if self.steps.view == "text":
            out += ["\n\n" + answer.cards(self.found.listings)] if self.found.listings else []
        else:
            out.append(AddableDict(flags=list(dict.fromkeys([*self.found.flags, *self.flags]))))
        return out
