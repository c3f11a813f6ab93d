import math

import pytest

from sage_platform.evaluation import hit_rate_at_k, mrr_at_k, ndcg_at_k, recall_at_k

RANKED = [["a", "b", "c"], ["x", "y", "z"], ["p", "q"]]
RELEVANT = [["b"], ["z", "w"], ["nope"]]


def test_recall_mrr_hit_rate_ndcg() -> None:
    assert recall_at_k(RANKED, RELEVANT, 1) == 0.0
    assert recall_at_k(RANKED, RELEVANT, 3) == pytest.approx((1 + 0.5 + 0) / 3)
    assert mrr_at_k(RANKED, RELEVANT, 10) == pytest.approx((1 / 2 + 1 / 3 + 0) / 3)
    assert mrr_at_k(RANKED, RELEVANT, 2) == pytest.approx((1 / 2) / 3)
    assert hit_rate_at_k(RANKED, RELEVANT, 3) == pytest.approx(2 / 3)
    first = (1 / math.log2(3)) / 1.0
    second = (1 / math.log2(4)) / (1 + 1 / math.log2(3))
    assert ndcg_at_k(RANKED, RELEVANT, 3) == pytest.approx((first + second + 0) / 3)


def test_bad_arguments_are_named() -> None:
    with pytest.raises(ValueError, match="2 rankings but 1"):
        recall_at_k([["a"], ["b"]], [["a"]], 1)
    with pytest.raises(ValueError, match="k must be at least 1"):
        mrr_at_k([["a"]], [["a"]], 0)
