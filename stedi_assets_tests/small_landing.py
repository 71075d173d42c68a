"""A small landing tree every source of which has valid lines, for tests that damage or remove part of it."""

from __future__ import annotations

import json
from pathlib import Path

from stedi_assets_tests.conftest import write_landing


def customer(email: str) -> dict:
    return {
        "customerName": "N",
        "email": email,
        "phone": "555",
        "birthDay": "1990-01-01",
        "serialNumber": "S-" + email,
        "registrationDate": 1,
        "lastUpdateDate": 10,
        "shareWithResearchAsOfDate": 1,
    }


def accel(t: int) -> dict:
    return {"user": "a@x.com", "timestamp": t, "x": 1.0, "y": 2.0, "z": 3.0}


def step(t: int) -> dict:
    return {"sensorReadingTime": t, "serialNumber": "S-a@x.com", "distanceFromObject": 7.0}


def jsonl(records: list[dict]) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in records)


def write_good_landing(root: Path) -> None:
    """Three valid lines per source, in customer/landing/part-1.json and so on."""
    write_landing(root, "customer", [customer(f"{n}@x.com") for n in "abc"])
    write_landing(root, "accelerometer", [accel(t) for t in (1, 2, 3)])
    write_landing(root, "step_trainer", [step(t) for t in (1, 2, 3)])
