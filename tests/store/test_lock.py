from __future__ import annotations

import pytest

from jobfallback.store import Store, open_store

pytestmark = pytest.mark.embedded


def test_second_holder_gets_false_until_the_first_releases(store: Store, database_url: str) -> None:
    with open_store(database_url) as other:
        with store.sweep_lock() as first:
            assert first is True
            with other.sweep_lock() as second:
                assert second is False
        with other.sweep_lock() as after_release:
            assert after_release is True


def test_lock_is_released_when_the_block_raises(store: Store) -> None:
    with pytest.raises(RuntimeError), store.sweep_lock():
        raise RuntimeError
    with store.sweep_lock() as again:
        assert again is True
