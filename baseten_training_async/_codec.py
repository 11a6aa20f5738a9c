"""JSON encoding and decoding, built once, and the character checks for wire text."""

from __future__ import annotations

import re
from typing import Any, TypeVar

import msgspec

__all__ = ["ENCODER", "decoder_for", "has_control_characters"]

T = TypeVar("T")

ENCODER = msgspec.json.Encoder()
_decoders: dict[Any, msgspec.json.Decoder[Any]] = {}


def decoder_for(response_type: type[T]) -> msgspec.json.Decoder[T]:
    """The JSON decoder for a type, built once and reused."""
    decoder = _decoders.get(response_type)
    if decoder is None:
        decoder = _decoders[response_type] = msgspec.json.Decoder(response_type)
    return decoder


_CONTROL = re.compile("[\x00-\x1f\x7f]")


def has_control_characters(value: str) -> bool:
    """Whether ``value`` holds C0 controls or DEL, which must never reach a header or path."""
    return _CONTROL.search(value) is not None
