"""False positives of the card-number rule (dig_contracts.pan) on realistic values that are not card
numbers, and its speed: `python -m benchmarks.pan`. Seeded, so the figures repeat."""

from __future__ import annotations

import json
import random
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from dig_contracts.pan import looks_like_card_number

SAMPLES = 100_000
START = datetime(2000, 1, 1, tzinfo=UTC)


def _moment(rng: random.Random) -> datetime:
    return START + timedelta(seconds=rng.randrange(40 * 365 * 86_400), microseconds=rng.randrange(1_000_000))


def _digits(rng: random.Random, count: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(count))


def _ean13(rng: random.Random) -> str:
    body = _digits(rng, 12)
    check = (10 - sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(body)) % 10) % 10
    return body + str(check)


FAMILIES: dict[str, Callable[[random.Random], object]] = {
    "e164_phone (+CC, 8-15 digits, spaced)": lambda rng: (
        "+" + " ".join([_digits(rng, rng.randint(1, 3)), _digits(rng, 3), _digits(rng, rng.randint(4, 9))])
    ),
    "national_phone ((613) 555-0100)": lambda rng: f"({_digits(rng, 3)}) {_digits(rng, 3)}-{_digits(rng, 4)}",
    "iso_timestamp (with microseconds and offset)": lambda rng: _moment(rng).isoformat(),
    "sql_timestamp (2026-11-21 11:00:00.123456)": lambda rng: _moment(rng).strftime("%Y-%m-%d %H:%M:%S.%f"),
    "epoch_seconds (number)": lambda rng: int(_moment(rng).timestamp()),
    "epoch_millis (number)": lambda rng: int(_moment(rng).timestamp() * 1000),
    "amount (decimal text)": lambda rng: f"{rng.randrange(10**9)}.{rng.randrange(100):02d}",
    "uuid4 (canonical text)": lambda rng: str(uuid.UUID(int=rng.getrandbits(128), version=4)),
    "order_id (ORD-YYYYMMDD-NNNNNN)": lambda rng: f"ORD-{_moment(rng):%Y%m%d}-{_digits(rng, 6)}",
    "member_id (M- and 6-10 digits)": lambda rng: f"M-{_digits(rng, rng.randint(6, 10))}",
    "ean13_barcode (13 bare digits)": _ean13,
    "event_id (evt-<nanosecond epoch>-<n>)": lambda rng: (
        f"evt-{int(_moment(rng).timestamp() * 1e9)}-{rng.randrange(1000)}"
    ),
    "any_16_digit_number (bare, uniform)": lambda rng: _digits(rng, 16),
    "epoch_nanos (19 bare digits)": lambda rng: str(int(_moment(rng).timestamp()) * 10**9 + rng.randrange(10**9)),
}


def run(samples: int = SAMPLES) -> dict[str, object]:
    rates: dict[str, object] = {}
    for name, make in FAMILIES.items():
        rng = random.Random(name)  # noqa: S311 - seeded test data, not secrets
        values = [make(rng) for _ in range(samples)]
        started = time.perf_counter()
        flagged = sum(looks_like_card_number(value) for value in values)
        elapsed = time.perf_counter() - started
        rates[name] = {"false_positive_rate": flagged / samples, "us_per_value": round(elapsed / samples * 1e6, 2)}
    return {"samples_per_family": samples, "families": rates}


if __name__ == "__main__":
    json.dump(run(int(sys.argv[1]) if len(sys.argv) > 1 else SAMPLES), sys.stdout, indent=2)
    print()
