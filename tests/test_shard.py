"""Shards: every source workspace in exactly one shard, the same one in every process."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter

import pytest

from jobfallback.shard import MAX_COUNT, Shard, shard_of

WORKSPACES = [f"ws-{n:05d}" for n in range(2000)]


@pytest.mark.parametrize("count", [1, 2, 3, 4, 7])
def test_each_workspace_belongs_to_exactly_one_shard(count: int) -> None:
    shards = [Shard(index, count) for index in range(count)]
    for workspace in WORKSPACES:
        assert sum(shard.owns(workspace) for shard in shards) == 1


def test_shards_are_near_even() -> None:
    sizes = Counter(shard_of(workspace, 4) for workspace in WORKSPACES)
    assert set(sizes) == {0, 1, 2, 3}
    assert max(sizes.values()) < 1.2 * len(WORKSPACES) / 4


def test_the_assignment_is_the_same_in_another_interpreter() -> None:
    # Unlike hash(), which is salted per process: shards run as separate processes and pods.
    code = "from jobfallback.shard import shard_of; print(shard_of('ws-ml', 4))"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert int(other.stdout) == shard_of("ws-ml", 4) == 1  # fixed: a change reshuffles fleets


@pytest.mark.parametrize(("text", "shard"), [("0/4", Shard(0, 4)), (" 3 / 4 ", Shard(3, 4))])
def test_parse(text: str, shard: Shard) -> None:
    assert Shard.parse(text) == shard
    assert str(shard) == text.replace(" ", "")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("4", "expected INDEX/COUNT"),
        ("a/4", "expected INDEX/COUNT"),
        ("-1/4", "expected INDEX/COUNT"),
        ("1/", "expected INDEX/COUNT"),
        ("4/4", "INDEX 0 to COUNT-1"),
        ("0/0", f"COUNT must be 1 to {MAX_COUNT}"),
        (f"0/{MAX_COUNT + 1}", f"COUNT must be 1 to {MAX_COUNT}"),
    ],
)
def test_parse_refuses_what_is_no_shard(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Shard.parse(text)
