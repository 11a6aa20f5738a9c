"""Parsing the HTTP dates servers send (``Date``, ``Retry-After``)."""

from __future__ import annotations

from datetime import datetime
from email.utils import parsedate_to_datetime

__all__ = ["parse_http_date"]


def parse_http_date(value: str | None) -> datetime | None:
    """An aware datetime from an HTTP date, or None if absent or malformed."""
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return parsed if parsed.tzinfo else None
