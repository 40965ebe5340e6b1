"""Deterministic synthetic records: the same seed and index always give the same row.

A record has 11 fields covering the types a REST API returns: ints, floats, strings, bools,
ISO timestamps and a nullable string. Generation is pure arithmetic (no `random` state), so
the server can build any page on demand and a test can rebuild any row to compare.
"""

from __future__ import annotations

from datetime import datetime, timezone

FIELDS = (
    "id",
    "name",
    "category",
    "amount",
    "quantity",
    "score",
    "active",
    "verified",
    "created_at",
    "updated_at",
    "note",
)
CATEGORIES = ("alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta")
EPOCH = datetime(2024, 1, 1, tzinfo=timezone.utc)
EPOCH_SECONDS = int(EPOCH.timestamp())
MASK = 0xFFFFFFFF


def _hash(seed: int, i: int) -> int:
    """A cheap 32-bit mix of (seed, i) (xorshift-multiply, good enough to spread values)."""
    h = (i * 0x9E3779B1 + seed * 0x85EBCA77 + 0x165667B1) & MASK
    h ^= h >> 15
    h = (h * 0x2C1B3C6D) & MASK
    h ^= h >> 12
    return h


_DAYS: dict[int, str] = {}


def iso(epoch_seconds: int) -> str:
    """`2024-01-01T00:00:37Z`: the ISO 8601 form the server writes and `updated_since` takes.

    The date part is formatted once per day, the time by arithmetic: the server builds 10M
    records (20M timestamps) for P4, which `strftime` per value made server-bound."""
    day, rest = divmod(epoch_seconds, 86_400)
    prefix = _DAYS.get(day)
    if prefix is None:
        prefix = datetime.fromtimestamp(day * 86_400, timezone.utc).strftime("%Y-%m-%dT")
        _DAYS[day] = prefix
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{prefix}{hours:02d}:{minutes:02d}:{seconds:02d}Z"


def parse_iso(text: str) -> int:
    """Epoch seconds of an ISO 8601 timestamp (`Z` or an offset)."""
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())


def record(seed: int, i: int) -> dict:
    """Row `i` (0-based) of the dataset of `seed`; `id` is `i + 1`."""
    h = _hash(seed, i)
    created = EPOCH_SECONDS + i * 37 + (h % 30)
    return {
        "id": i + 1,
        "name": f"item-{seed}-{i:07d}",
        "category": CATEGORIES[h % len(CATEGORIES)],
        "amount": ((h >> 3) % 1_000_000) / 100 + 0.25,
        "quantity": (h >> 7) % 1000,
        "score": ((h >> 11) % 10_000) / 7.0,
        "active": bool(h & 1),
        "verified": bool(h & 2),
        "created_at": iso(created),
        "updated_at": iso(created + 3600 + (h % 86_400)),
        "note": None if i % 7 == 3 else f"note {h % 9973}",
    }


def records(seed: int, start: int, stop: int) -> list[dict]:
    return [record(seed, i) for i in range(start, stop)]


def event(seed: int, i: int) -> dict:
    """Row `i` of the incremental endpoint: `updated_at` strictly increases with `i`."""
    row = record(seed, i)
    row["updated_at"] = iso(EPOCH_SECONDS + 60 * (i + 1))
    return row


def child(seed: int, parent_id: int, j: int) -> dict:
    """Child `j` of parent `parent_id` on the fan-out endpoint."""
    h = _hash(seed, parent_id * 1000 + j)
    return {
        "id": parent_id * 1000 + j,
        "parent_id": parent_id,
        "label": f"child-{parent_id}-{j}",
        "value": (h % 100_000) / 10,
        "created_at": iso(EPOCH_SECONDS + parent_id * 3600 + j),
    }
