"""Pricing: every request is priced, so a price table is built once per source (counted here),
and the estimates are what a freshly built table gives."""

from __future__ import annotations

import json

import pytest

from vidground import pricing
from vidground.errors import ConfigurationError, InputError
from vidground.pricing import DEFAULT_PRICES, PriceTable, with_cost
from vidground.types import Usage

USAGE = Usage(requests=1, prompt_tokens=1000, completion_tokens=200)


@pytest.fixture
def builds(monkeypatch):
    """Counts PriceTable constructions, starting from an empty cache."""
    count = []
    init = PriceTable.__init__

    def counting(self, prices):
        count.append(1)
        init(self, prices)

    monkeypatch.setattr(pricing, "_TABLES", {})
    monkeypatch.setattr(PriceTable, "__init__", counting)
    return count


def test_the_built_in_table_is_built_once_for_many_requests(builds):
    costs = {with_cost(USAGE, "gpt-4o-mini-2024-07-18").cost_usd for _ in range(200)}
    assert len(builds) == 1
    assert costs == {(1000 * 0.15 + 200 * 0.60) / 1e6}
    assert with_cost(USAGE, "my-local-model").cost_usd is None and len(builds) == 1


def test_a_json_file_is_read_once_until_it_changes(builds, tmp_path):
    path = tmp_path / "prices.json"
    path.write_text(json.dumps({"m": {"input": 1.0, "output": 2.0}}))
    assert {with_cost(USAGE, "m", str(path)).cost_usd for _ in range(50)} == {(1000 * 1.0 + 200 * 2.0) / 1e6}
    assert with_cost(USAGE, "m", path).cost_usd and len(builds) == 1  # a Path and its string share the table
    path.write_text(json.dumps({"m": {"input": 10.0, "output": 20.0, "cached_input": 5.0}}))  # another size
    assert with_cost(USAGE, "m", path).cost_usd == pytest.approx((1000 * 10.0 + 200 * 20.0) / 1e6)
    assert len(builds) == 2
    path.unlink()
    with pytest.raises(InputError, match="cannot read the price table"):
        with_cost(USAGE, "m", path)


def test_a_mapping_is_built_once_per_content(builds):
    for _ in range(20):
        assert with_cost(USAGE, "m", {"m": {"input": 1.0, "output": 1.0}}).cost_usd == pytest.approx(1200 / 1e6)
    assert len(builds) == 1
    assert with_cost(USAGE, "m", {"m": (2.0, 1.0)}).cost_usd == pytest.approx(2200 / 1e6) and len(builds) == 2
    # equal but differently typed content is not the cached table: a bool is still refused
    with_cost(USAGE, "m", {"m": (1, 1)})
    with pytest.raises(ConfigurationError, match="non-negative number"):
        with_cost(USAGE, "m", {"m": (True, 1)})
    # an unhashable value is built every time, as before
    assert with_cost(USAGE, "m", {"m": {"input": 1.0, "output": 1.0, "note": ["x"]}}).cost_usd == pytest.approx(1200 / 1e6)


def test_cached_estimates_equal_a_fresh_tables():
    fresh = PriceTable(DEFAULT_PRICES)
    for model in ["gpt-4o", "gpt-4o-2024-08-06", "GPT-4.1-mini", "openai/gpt-4.1-nano", "qwen2.5-vl"]:
        for _ in range(2):
            assert with_cost(USAGE, model).cost_usd == fresh.cost(model, USAGE)
