"""Ingest `listings.jsonl` into Chroma: idempotent upsert keyed by id + content hash, with a progress bar.

    python -m retrieval.ingest                 # sync the index with LISTINGS_FILE
    python -m retrieval.ingest --if-missing    # only when the collection is empty (used by `make serve`)

Re-running changes nothing; a listing gone from the file is deleted. A changed listing (`content_hash`) is
re-embedded only when its embedded text changed (`text_hash`); otherwise only its stored copy (the Chroma
metadata the index reloads listings from) is updated: a new price reaches the search without an embedding.

A malformed line (bad JSON, a missing or invalid field, a duplicate id) is skipped and reported with its line
number; every other line is still ingested, and the command exits 1 at the end. Deletions are conservative:
a listing whose line is malformed keeps its indexed version, and when some line is not even JSON (so its id is
unknown) nothing is deleted in that run.

Listing text is untrusted: when a `screen` function is given, each new or changed listing's text goes through
it; "block" rejects the listing and "flag" quarantines it (text that speaks to the assistant): either way it
stays out of the index (an older version is removed), so search never serves it, and the report lists it.
Otherwise its sanitised text is what gets indexed. Whatever is indexed only reaches a prompt fenced as data.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from langchain_chroma import Chroma
from pydantic import ValidationError

from retrieval.embeddings import embedding_id
from retrieval.schema import Listing
from retrieval.store import ListingsStore, update_metadatas

__all__ = [
    "BadLine",
    "IngestReport",
    "ScreenResult",
    "embedded_by",
    "ingest",
    "print_report",
    "read_listings",
    "to_metadata",
]

_PAGE = 5000


class ScreenResult(Protocol):
    """What a screen returns (the guard's `GuardOutput` fits): sanitised text, an action, the reasons."""

    @property
    def text(self) -> str: ...

    @property
    def action(self) -> str: ...  # "allow" | "flag" | "block"

    @property
    def reasons(self) -> Sequence[str]: ...


Screen = Callable[[str], ScreenResult]


@dataclass(frozen=True)
class BadLine:
    line: int
    error: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.error}"


@dataclass
class IngestReport:
    total: int = 0
    added: int = 0
    updated: int = 0
    metadata_only: int = 0  # of the updated: the stored copy only (the embedded text had not changed)
    unchanged: int = 0
    deleted: int = 0
    bad_lines: list[BadLine] = field(default_factory=list)
    rejected: dict[str, list[str]] = field(default_factory=dict)  # id -> reasons (screen said block)
    quarantined: dict[str, list[str]] = field(default_factory=dict)  # id -> reasons (screen said flag)
    deletions_skipped: bool = False

    @property
    def ok(self) -> bool:
        return not self.bad_lines

    def summary(self) -> str:
        updated = f"{self.updated} updated"
        if self.metadata_only:
            updated += f" ({self.metadata_only} without re-embedding)"
        parts = [f"{self.total} valid listings", f"{self.added} added", updated]
        parts += [f"{self.unchanged} unchanged", f"{self.deleted} deleted"]
        if self.rejected:
            parts.append(f"{len(self.rejected)} rejected by the screen")
        if self.quarantined:
            parts.append(f"{len(self.quarantined)} quarantined by the screen")
        if self.bad_lines:
            parts.append(f"{len(self.bad_lines)} malformed line(s) skipped")
        return ", ".join(parts)


def read_listings(lines: Iterable[str]) -> tuple[list[Listing], list[BadLine], set[str], bool]:
    """Parses JSON Lines.

    Returns:
        The valid listings, the bad lines, the ids named by bad lines (kept, not deleted), and whether some
        bad line's id is unknown.
    """
    listings: list[Listing] = []
    bad: list[BadLine] = []
    protected: set[str] = set()
    unknown = False
    seen: set[str] = set()
    for n, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as exc:
            bad.append(BadLine(n, f"not valid JSON ({exc.msg} at column {exc.colno})"))
            unknown = True
            continue
        lid = obj.get("id") if isinstance(obj, dict) else None
        try:
            listing = Listing.model_validate(obj)
        except ValidationError as exc:
            errs = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'line'}: {e['msg']}"
                for e in exc.errors(include_url=False, include_input=False)
            )
            bad.append(BadLine(n, f"id {lid!r}: {errs}" if isinstance(lid, str) else errs))
            if isinstance(lid, str):
                protected.add(lid)
            else:
                unknown = True
            continue
        if listing.id in seen:
            bad.append(BadLine(n, f"duplicate id {listing.id!r} (the first occurrence is kept)"))
            continue
        seen.add(listing.id)
        listings.append(listing)
    return listings, bad, protected, unknown


def to_metadata(listing: Listing, content_hash: str, text_hash: str, embedding: str = "") -> dict[str, Any]:
    """Chroma metadata: the whole listing as JSON (the index reloads listings from it and filters them in
    numpy, retrieval/index.py), the hashes and the embedding model that decide what a later ingest redoes, and
    a few scalars for people reading the collection (search never asks Chroma to filter on them: that was 15x
    slower)."""
    return {
        "content_hash": content_hash,
        "text_hash": text_hash,
        "embedding": embedding,
        "category": listing.category,
        "county": listing.county,
        "city": listing.city,
        "lat": listing.lat,
        "lon": listing.lon,
        "service_radius_miles": listing.service_radius_miles,
        "price_from_usd": listing.price_from_usd,
        "rating": listing.rating,
        "listing": listing.model_dump_json(),
    }


def embedded_by(store: Chroma) -> str | None:
    """The embedding model that made the collection's vectors, as its first listing records it ('' for an index
    from before the model was recorded); None when the collection is empty."""
    first = store.get(limit=1, include=["metadatas"])
    if not first["ids"]:
        return None
    return str((first["metadatas"][0] or {}).get("embedding") or "")


def _stored(store: Chroma, embedding: str | None) -> dict[str, tuple[str, str | None]]:
    """id -> (content hash, hash of the text its vector was made from) of everything in the collection, read
    once, page by page. With `embedding`, a vector another model made counts as changed: content hash '' and
    no text hash (it must be made again). An index from before `text_hash` was stored: recomputed."""
    out: dict[str, tuple[str, str | None]] = {}
    offset = 0
    while True:
        page = store.get(include=["metadatas"], limit=_PAGE, offset=offset)
        for lid, meta in zip(page["ids"], page["metadatas"], strict=True):
            meta = meta or {}
            if embedding is not None and meta.get("embedding") != embedding:
                out[lid] = ("", None)
                continue
            text_hash = str(meta["text_hash"]) if meta.get("text_hash") else None
            if text_hash is None and meta.get("listing"):
                text_hash = Listing.model_validate_json(meta["listing"]).text_hash()
            out[lid] = (str(meta.get("content_hash", "")), text_hash)
        if len(page["ids"]) < _PAGE:
            return out
        offset += _PAGE


def _screened(listing: Listing, screen: Screen) -> tuple[Listing | None, list[str], bool]:
    fields = {"title": listing.title, "description": listing.description, "operator": listing.operator}
    fields["services"] = "\n".join(listing.services)
    clean: dict[str, Any] = {}
    reasons: list[str] = []
    flagged = False
    for name, text in fields.items():
        verdict = screen(text)
        reasons += [f"{name}: {r}" for r in verdict.reasons]
        if verdict.action == "block":
            return None, reasons, True
        flagged = flagged or verdict.action == "flag"
        clean[name] = verdict.text
    clean["services"] = [s for s in clean["services"].split("\n") if s.strip()]
    return listing.model_copy(update=clean), reasons, flagged


def ingest(
    *,
    store: ListingsStore,
    path: Path,
    batch_size: int = 32,
    screen: Screen | None = None,
    progress: bool = True,
    threads: int = 1,
) -> IngestReport:
    """Brings the collection in line with the file.

    Args:
        store: the listings vector store (`build_vectorstore`; its embeddings embed the new and changed listings).
        path: the JSON Lines file.
        batch_size: listings per embedding + upsert call.
        screen: the guard for untrusted listing text (None: not screened).
        progress: show a tqdm progress bar.
        threads: listings screened at once (the guard embeds each field's sentence windows: one ONNX run each,
            which releases the GIL); the screen must be thread-safe (the guard's is).
    """
    from tqdm import tqdm

    with path.open(encoding="utf-8") as fh:
        listings, bad, protected, unknown = read_listings(fh)
    report = IngestReport(total=len(listings), bad_lines=bad)
    model = embedding_id(store.embeddings) if store.embeddings is not None else ""
    stored = _stored(store, model)  # one read of the collection's metadata
    old = {lid: content for lid, (content, _) in stored.items()}
    embedded = {lid: text for lid, (_, text) in stored.items() if text is not None}
    todo: list[tuple[Listing, str]] = []
    for listing in listings:
        digest = listing.content_hash()
        if old.get(listing.id) == digest:
            report.unchanged += 1
        else:
            todo.append((listing, digest))
    to_delete: list[str] = []
    pool = ThreadPoolExecutor(max_workers=max(1, threads), thread_name_prefix="ingest-screen")
    with pool, tqdm(total=len(todo), unit="listing", desc="embedding", disable=not progress) as bar:
        for start in range(0, len(todo), batch_size):
            chunk = todo[start : start + batch_size]
            ids, texts, metas = [], [], []
            same_ids, same_metas = [], []  # embedded text unchanged: only the stored copy is updated
            verdicts = (pool.map(lambda item: _screened(item[0], screen), chunk) if screen is not None
                        else ((listing, [], False) for listing, _ in chunk))  # in the chunk's order
            for (listing, digest), (clean, reasons, flagged) in zip(chunk, verdicts, strict=True):
                if clean is None or flagged:
                    (report.quarantined if clean is not None else report.rejected)[listing.id] = reasons
                    if listing.id in old:
                        to_delete.append(listing.id)
                    continue
                text_hash = listing.text_hash()
                if embedded.get(listing.id) == text_hash:
                    same_ids.append(listing.id)
                    same_metas.append(to_metadata(clean, digest, text_hash, model))
                else:
                    ids.append(listing.id)
                    texts.append(clean.embed_text())
                    metas.append(to_metadata(clean, digest, text_hash, model))
                if listing.id in old:
                    report.updated += 1
                else:
                    report.added += 1
            if ids:
                store.add_texts(texts=texts, metadatas=metas, ids=ids)  # upsert by id
            if same_ids:
                update_metadatas(store, same_ids, same_metas)
                report.metadata_only += len(same_ids)
            bar.update(len(chunk))
    keep = {listing.id for listing in listings} | protected
    gone = [lid for lid in old if lid not in keep]
    if unknown and gone:
        report.deletions_skipped = True
    else:
        to_delete += gone
    if to_delete:
        for start in range(0, len(to_delete), _PAGE):
            store.delete(ids=to_delete[start : start + _PAGE])
        report.deleted = len(to_delete)
    return report


def print_report(report: IngestReport, *, out: Callable[[str], Any] = print, limit: int = 20) -> None:
    """Human-readable summary; the first `limit` bad lines are listed."""
    out(report.summary())
    for item in report.bad_lines[:limit]:
        out(f"  malformed {item}")
    if len(report.bad_lines) > limit:
        out(f"  ... and {len(report.bad_lines) - limit} more malformed line(s)")
    for lid, reasons in list(report.rejected.items())[:limit]:
        out(f"  rejected {lid}: {'; '.join(reasons)}")
    for lid, reasons in list(report.quarantined.items())[:limit]:
        out(f"  quarantined {lid}: {'; '.join(reasons)}")
    if report.deletions_skipped:
        out("  deletions skipped: a line that is not JSON may hold any id")
