"""The real embedded model (SmolLM2-135M on llama.cpp) describes a real listing of data/listings.jsonl over HTTP.

The model is weak: the test checks structure and the one guarantee that holds whatever it writes — the
returned text makes no claim the listing does not back.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from chains.claims import check, load_claims
from chains.describe import area_places
from chains.describe.schema import canonical, sources_of
from server import create_app
from settings import ROOT
from tests.conftest import LiveServer, make_settings

FIELDS = ("title", "category", "city", "services", "certifications", "insured", "features", "price_from_usd",
          "price_unit")


def _listing(listing_id: str) -> dict[str, Any]:
    for line in (ROOT / "data" / "listings.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        if row["id"] == listing_id:
            return {k: row[k] for k in FIELDS}
    raise AssertionError(f"{listing_id} is not in data/listings.jsonl")


@pytest.mark.parametrize("mode", ["facts", "compose", "write"])
def test_local_model_describes_a_shipped_listing(local_llm: str, tmp_path: Path, mode: str) -> None:
    """Each mode the embedded model may be given (`facts` as shipped: it is not asked)."""
    facts = _listing("lst-0001")  # Marysville aerial photography, Part 107, not insured, from $149/hour
    presets = yaml.safe_load((ROOT / "data" / "presets.yaml").read_text(encoding="utf-8"))
    presets["describe"]["local"]["mode"] = mode
    if mode == "write":
        presets["describe"]["local"]["prompt"] = "describe"
    (tmp_path / "presets.yaml").write_text(yaml.safe_dump(presets), encoding="utf-8")
    settings = make_settings(local_model_url=local_llm, describe_cache_path=tmp_path / "cache.db",
                             presets_file=tmp_path / "presets.yaml")
    with LiveServer(create_app(settings)) as live:
        r = httpx.post(f"{live.url}/describe/invoke", json={"input": {**facts, "max_words": 80}}, timeout=300)
    assert r.status_code == 200, r.text
    out = r.json()["output"]
    assert isinstance(out["description"], str) and isinstance(out["flags"], list)
    assert out["model"] == ("" if mode == "facts" else settings.local_model_name)
    assert out["cached"] is False and out["error"] is None
    assert out["moderation"]["flagged"] is False
    assert out["grounded"] is bool(out["description"])
    assert len(out["description"].split()) <= 80
    sources = sources_of(canonical(facts), area_places(settings.places_file))
    assert check(out["description"], sources, load_claims(settings.describe_claims_file)) == []
