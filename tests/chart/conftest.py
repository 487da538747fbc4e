from __future__ import annotations

from collections.abc import Iterator

import helm_python
import pytest

from tests.chart.helm import load_chart


@pytest.fixture(scope="session")
def chart() -> Iterator[helm_python.Chart]:
    with load_chart() as loaded:
        yield loaded
