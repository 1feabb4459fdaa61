"""errors.py: 429 and 503 errors always know when to retry (the Retry-After /openapi.json promises for them)."""

from __future__ import annotations

from errors import NotReady, ProviderRateLimited, RateLimited, SkyMarketError


def test_429_and_503_errors_carry_a_retry_after_even_when_the_raiser_gives_none() -> None:
    for exc in (NotReady("index loading"), RateLimited("slow down"), ProviderRateLimited("upstream")):
        assert exc.status in (429, 503) and exc.retry_after and exc.retry_after > 0, exc
    assert NotReady("x", retry_after=30).retry_after == 30  # the raiser's figure wins
    assert SkyMarketError("bug").retry_after is None

