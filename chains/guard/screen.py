"""`screen()`: one pure function from untrusted text to a verdict (allow / flag / block).

normalise -> detection views -> rules (the source decides which: some speak only to data) -> learned layer
(an embedding of the text, passed in or computed) -> noisy-OR score -> action -> PII redaction.
Words are never silently removed: the text is only normalised (invisible characters dropped) and redacted.
A text over the length limit is a validation error (`InputTooLong`), raised before any screening.
"""

from __future__ import annotations

import re
from typing import Any

from chains.guard.decode import decode_payloads
from chains.guard.detect import Detection, cipher_views, combine, load_rules, scan, scan_view, words_of
from chains.guard.fold import fold, leet, leet_hint, mixed_script_words
from chains.guard.learned import aprefetch, load_model, prefetch, probability
from chains.guard.models import Action, GuardConfig, GuardOutput
from chains.guard.normalize import normalize
from chains.guard.pii import redact_pii
from errors import InputTooLong

__all__ = ["LEARNED_REASON", "aprefetch_learned", "prefetch_learned", "screen", "screen_many"]

_DEFAULT = GuardConfig()
_WORDY = re.compile(r"[^\W_]")  # a letter or digit
LEARNED_REASON = "learned_classifier"


def _config(config: Any) -> GuardConfig:
    """The guard's configuration from a `GuardConfig`, the `Settings` object or None (the defaults)."""
    return _DEFAULT if config is None else GuardConfig.from_settings(config)


def screen(text: str, *, source: str = "chat", config: Any = None, embedding: Any = None) -> GuardOutput:
    """Screens one untrusted text.

    Args:
        text: the raw text.
        source: "chat", "search", "describe" or "listing": rules about data addressed to the assistant run
            for the last three only.
        config: a `GuardConfig`, or the `Settings` object (its `guard_*` fields); defaults if None.
        embedding: MiniLM's query embedding of the text (`MiniLMEmbeddings.embed_queries`), when the caller
            computed it anyway (the search does, for its query): the learned layer then makes no ONNX run.
            Without it the text is embedded here for `config.embed_sources`, and only the rules run for
            other sources.

    Returns:
        The sanitized text, the action, a score in [0, 1], the reasons and the PII redactions.

    Raises:
        InputTooLong: the text is over `config.max_chars` (a validation error, not a verdict).
    """
    cfg = _config(config)
    if not isinstance(text, str):
        text = str(text)
    if len(text) > cfg.max_chars:
        raise InputTooLong(f"the text is {len(text)} characters long; the limit is {cfg.max_chars}")
    norm = normalize(text, max_combining=cfg.max_combining)
    clean = norm.text
    redactions: list[str] = []
    if cfg.redact_pii:
        clean, redactions = redact_pii(clean)

    rules = load_rules()
    found = Detection()
    for finding in norm.findings:
        found.add(f"unicode_{finding}", rules.unicode.get(finding, 0.2))
    if mixed_script_words(norm.text):
        found.add("unicode_mixed_script", rules.unicode["mixed_script"])

    folded = fold(norm.text)
    words = words_of(folded)
    stop = cfg.block_at
    done = scan_view(folded, words, found, rules, stop_at=stop, source=source)
    extra = [fold(h) for h in norm.hidden]
    # Scan a leetspeak-undone view only if undoing leet produces a word some rule mentions ("3d" -> "ed" does
    # not): on ordinary text with model numbers and prices this saves a regex pass and a second full scan.
    hint = leet_hint(folded)
    if hint != folded and not rules.vocab.isdisjoint(words_of(hint) - words):
        undone = leet(folded)
        if undone is not None and not rules.vocab.isdisjoint(words_of(undone) - words):
            extra.append(undone)
    for kind, decoded in decode_payloads(norm.text, words):
        found.add(f"encoded_{kind}", rules.encoded.get(kind, rules.encoded["default"]))
        extra.append(fold(decoded))
    if not done:
        scan(extra, found, rules, stop_at=stop, source=source)
    for cipher, view, english in cipher_views(folded, words) if found.score < stop else ():
        probe = Detection()
        scan([view], probe, rules, source=source)
        if english or probe.hits:  # a cipher only counts if it reads as English or hides a known attack
            found.add(f"encoded_{cipher}", rules.encoded["default"])
            for reason, weight in probe.hits.items():
                found.add(reason, weight)

    # The learned layer needs words to read: an empty or symbol-only text is left to the rules.
    if (
        cfg.learned
        and found.score < stop
        and (embedding is not None or source in cfg.embed_sources)
        and _WORDY.search(norm.text)
    ):
        model = load_model()
        p = probability(norm.text, embedding=embedding, model=model, windows=source in cfg.window_sources)
        weight = model.weight(p, cfg.flag_at)
        if weight > 0:
            found.add(LEARNED_REASON, weight)

    score = round(combine(found.hits.values()), 3)
    action: Action = "block" if score >= cfg.block_at else "flag" if score >= cfg.flag_at else "allow"
    reasons = sorted(found.hits, key=lambda r: (-found.hits[r], r))
    return GuardOutput(text=clean, action=action, score=score, reasons=reasons, redactions=redactions)


def screen_many(texts: list[str], *, source: str = "listing", config: Any = None) -> list[GuardOutput]:
    """Screens several texts from one source, embedding the ones the learned layer has not seen in one run.

    For data put in front of the model (the listings an assistant answer cites): verdicts depend only on the
    text, and the learned layer's probability is cached by the text's sha256, so a listing screened before
    costs only the rules (about a millisecond).

    Args:
        texts: the raw texts.
        source: usually "listing".
        config: a `GuardConfig` or the `Settings` object.

    Raises:
        InputTooLong: a text is over the length limit.
    """
    cfg = _config(config)
    prefetch_learned(texts, source=source, config=cfg)
    return [screen(t, source=source, config=cfg) for t in texts]


async def aprefetch_learned(texts: list[str], *, source: str, config: Any = None) -> None:
    """`prefetch_learned` for an event loop: the ONNX run happens in the learned layer's batcher thread, with
    the texts of any other request waiting for it, while the loop goes on.

    Args:
        texts: the raw texts about to be screened.
        source: their source (nothing to do for a source the guard does not embed).
        config: a `GuardConfig` or the `Settings` object.
    """
    cfg = _config(config)
    await aprefetch(_learned_views(texts, source, cfg), windows=source in cfg.window_sources)


def prefetch_learned(texts: list[str], *, source: str, config: Any = None) -> None:
    """Embeds, in one ONNX run, the texts `screen()` will embed and has not seen (several fields of one
    request cost about one run); `screen()` then finds their probabilities in the cache.

    Args:
        texts: the raw texts about to be screened.
        source: their source (nothing to do for a source the guard does not embed).
        config: a `GuardConfig` or the `Settings` object.
    """
    cfg = _config(config)
    prefetch(_learned_views(texts, source, cfg), windows=source in cfg.window_sources)


def _learned_views(texts: list[str], source: str, config: Any) -> list[str]:
    """What `screen()` would give the learned layer of these texts: their normalised views, for a source the
    guard embeds, within the length limit, with words to read (none when the layer is off)."""
    cfg = _config(config)
    if not (cfg.learned and source in cfg.embed_sources):
        return []
    views = (normalize(t, max_combining=cfg.max_combining).text for t in texts if len(t) <= cfg.max_chars)
    return [v for v in views if _WORDY.search(v)]
