"""The nearness bench's metric, as its judgements file defines it: distance tiers, gains, nDCG@k."""

from __future__ import annotations

import pytest

from bench.search_nearness import gain, ndcg_at, tier


@pytest.mark.parametrize(("miles", "expected"), [(0.0, 3), (10.0, 3), (10.1, 2), (20.0, 2), (20.1, 1), (80.0, 1)])
def test_tiers(miles: float, expected: int) -> None:
    assert tier(miles) == expected


def test_gains_fall_with_distance_and_a_good_listing_counts_a_third() -> None:
    assert [gain(2, m) for m in (5, 15, 25)] == [3.0, 2.0, 1.0]
    assert gain(1, 5) == pytest.approx(1.0) and gain(1, 25) == pytest.approx(1 / 3)
    assert gain(0, 1) == 0.0
    assert gain(2, 25) == pytest.approx(gain(1, 5))  # a best listing far away = a good one nearby


def test_ndcg_is_one_for_the_ideal_order_and_lower_when_the_far_one_leads() -> None:
    ideal = [1.0, 3.0, 2.0, 0.0]
    assert ndcg_at([3.0, 2.0, 1.0], ideal, 3) == pytest.approx(1.0)
    assert ndcg_at([1.0, 3.0, 2.0], ideal, 3) < 0.9
    assert ndcg_at([0.0, 0.0], [0.0, 0.0], 3) == 0.0  # nothing relevant anywhere: 0, not a division by zero
