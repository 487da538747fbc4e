"""Which sources one sweep takes when several run side by side (`--shard INDEX/COUNT`).

A source belongs to shard `sha256(workspace id) mod COUNT`: stable across processes, Python
versions and machines (unlike `hash()`), and independent of the config that names it, so every
config of one workspace lands in the same shard and no run is listed by two shards. The journal
is shared: a move's row fences it whatever shard takes it up.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

# Far more than a fleet needs (README "Scaling out: shards"); the sweep lock's key has room
# for 1023.
MAX_COUNT = 1000


@dataclass(frozen=True)
class Shard:
    index: int
    count: int

    def __post_init__(self) -> None:
        if not 1 <= self.count <= MAX_COUNT or not 0 <= self.index < self.count:
            raise ValueError(
                f"shard {self.index}/{self.count}: COUNT must be 1 to {MAX_COUNT} and INDEX 0 to "
                "COUNT-1"
            )

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    @classmethod
    def parse(cls, text: str) -> Shard:
        index, slash, count = text.strip().partition("/")
        if not slash or not index.strip().isdigit() or not count.strip().isdigit():
            raise ValueError(f"shard {text!r}: expected INDEX/COUNT, e.g. 0/4")
        return cls(int(index), int(count))

    def owns(self, workspace_id: str) -> bool:
        return shard_of(workspace_id, self.count) == self.index


def shard_of(workspace_id: str, count: int) -> int:
    digest = hashlib.sha256(workspace_id.encode()).digest()
    return int.from_bytes(digest[:8], "big") % count
