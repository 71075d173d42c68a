"""Landing validation: the ZONE_RULES.md rules that turn one JSON object into a typed row, or a reason.

Types are explicit and never inferred: a field is checked against the kind its rule names, so a string
never passes for a number and a float like 1.5 never passes for an epoch-millisecond integer.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from decimal import Decimal
from typing import Any

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


class Invalid(ValueError):
    """A record breaks a landing rule; the message is the quarantine reason."""


def _is_number(value: Any) -> bool:
    # bool is a subclass of int in Python, but JSON true/false are not numbers. JSON decimals are
    # parsed as Decimal (see reader.parse_line), so their exact written value is what is judged.
    return not isinstance(value, bool) and isinstance(value, (int, float, Decimal))


def _integer(value: Any) -> int:
    if not _is_number(value):
        raise Invalid(f"is {_json_type(value)}, not an integer")
    if isinstance(value, (float, Decimal)):
        if not (value.is_finite() if isinstance(value, Decimal) else math.isfinite(value)) or value != int(value):
            raise Invalid(f"is {value}, not a whole number")
        value = int(value)
    if not INT64_MIN <= value <= INT64_MAX:
        raise Invalid(f"is {value}, outside the 64-bit integer range")
    return value


def _number(value: Any) -> float:
    if not _is_number(value):
        raise Invalid(f"is {_json_type(value)}, not a number")
    try:
        result = float(value)
    except OverflowError:  # an integer too large for a double
        raise Invalid(f"is {str(value)[:30]}..., too large for a number") from None
    if not math.isfinite(result):
        raise Invalid(f"is {value}, not a finite number")
    return result


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise Invalid(f"is {_json_type(value)}, not a string")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate written as a \ud800 escape: no such character
        raise Invalid("holds an unpaired surrogate escape, not text") from None
    return value


def _key_string(value: Any) -> str:
    # Identity keys and serials must say something: empty after trimming spaces is as good as missing.
    text = _string(value)
    if not text.strip(" "):
        raise Invalid("is empty")
    return text


def _json_type(value: Any) -> str:
    """The kind of a JSON value, never the value: a quarantine reason must not repeat a name or phone."""
    if value is None:
        return "null"
    if _is_number(value):
        return "a number"
    return {bool: "a boolean", str: "a string", list: "an array", dict: "an object"}.get(type(value), "a value")


Kind = Callable[[Any], Any]

# source -> (JSON key, parser, required). Order is the landing table's column order.
FIELDS: dict[str, tuple[tuple[str, Kind, bool], ...]] = {
    "customer": (
        ("customerName", _string, False),
        ("email", _key_string, True),
        ("phone", _string, False),
        ("birthDay", _string, False),
        ("serialNumber", _key_string, True),
        ("registrationDate", _integer, True),
        ("lastUpdateDate", _integer, True),
        ("shareWithResearchAsOfDate", _integer, False),
        ("shareWithPublicAsOfDate", _integer, False),
        ("shareWithFriendsAsOfDate", _integer, False),
    ),
    "accelerometer": (
        ("user", _key_string, True),
        ("timestamp", _integer, True),
        ("x", _number, True),
        ("y", _number, True),
        ("z", _number, True),
    ),
    "step_trainer": (
        ("sensorReadingTime", _integer, True),
        ("serialNumber", _key_string, True),
        ("distanceFromObject", _number, True),
    ),
}

# Older app versions wrote timeStamp; when both keys are present, timestamp wins.
LEGACY_KEYS = {"accelerometer": {"timestamp": "timeStamp"}}


def validate(source: str, record: Any) -> tuple[Any, ...]:
    """Return the typed values of one record of `source` in column order, or raise Invalid."""
    if not isinstance(record, dict):
        raise Invalid(f"not a JSON object but {_json_type(record)}")
    legacy = LEGACY_KEYS.get(source, {})
    values: list[Any] = []
    for key, parse, required in FIELDS[source]:
        name = key if key in record or key not in legacy else legacy[key]
        value = record.get(name)
        if value is None:
            if required:
                raise Invalid(f"{key} is {'null' if name in record else 'missing'}")
            values.append(None)
            continue
        try:
            values.append(parse(value))
        except Invalid as err:
            raise Invalid(f"{name} {err}") from None
    return tuple(values)
