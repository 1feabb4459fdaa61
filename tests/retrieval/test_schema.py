"""The listing's hashes: the content hash covers what the index stores (every field set to a non-default
value) and ignores a new optional field no listing sets; the text hash covers only the embedded text."""

from __future__ import annotations

from typing import Any

from retrieval.schema import Listing


class Later(Listing):
    """The listing as a later version might declare it: one optional field more."""

    response_hours: float | None = None


def test_a_new_optional_field_changes_no_hash(all_rows: list[dict[str, Any]]) -> None:
    row = all_rows[0]
    now, later = Listing.model_validate(row), Later.model_validate(row)
    assert later.content_hash() == now.content_hash() and later.text_hash() == now.text_hash()
    assert Later.model_validate({**row, "response_hours": None}).content_hash() == now.content_hash()
    fast = Later.model_validate({**row, "response_hours": 2})
    assert fast.content_hash() != now.content_hash() and fast.text_hash() == now.text_hash()


def test_a_price_changes_the_content_not_the_text(all_rows: list[dict[str, Any]]) -> None:
    row = all_rows[1]
    now = Listing.model_validate(row)
    dearer = Listing.model_validate({**row, "price_from_usd": row["price_from_usd"] + 1})
    assert dearer.content_hash() != now.content_hash() and dearer.text_hash() == now.text_hash()
    renamed = Listing.model_validate({**row, "title": row["title"] + " Pro"})
    assert renamed.content_hash() != now.content_hash() and renamed.text_hash() != now.text_hash()


def test_hashes_do_not_depend_on_key_order(all_rows: list[dict[str, Any]]) -> None:
    row = all_rows[2]
    flipped = dict(reversed(list(row.items())))
    assert Listing.model_validate(flipped).content_hash() == Listing.model_validate(row).content_hash()
