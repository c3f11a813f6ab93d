"""Each test builds the ROUGE scorers afresh, so no test relies on one an earlier test built."""

from collections.abc import Iterator

import pytest

from sage_platform.evaluation import text_metrics


@pytest.fixture(autouse=True)
def _fresh_scorers() -> Iterator[None]:
    text_metrics._scorer.cache_clear()
    yield
