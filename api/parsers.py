from __future__ import annotations

import io
import re
from collections.abc import Iterator
from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

TOO_DEEP = "JSON parse error - nested too deeply."
SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
LONE_SURROGATE = "JSON parse error - a string holds a lone UTF-16 surrogate (\\ud800-\\udfff)."


def json_strings(value: Any) -> Iterator[str]:
    """Every string of a parsed JSON value, object keys included; iterative, for deep values."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())


def has_lone_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


class SafeJSONParser(JSONParser):
    """DRF's JSON parser, with absurdly deep nesting a 400 instead of a RecursionError, and
    strings that no UTF-8 text can hold (an escaped lone surrogate such as "\\ud800") a 400
    too: PostgreSQL, the idempotency digest and every encoder downstream would fail on them."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        raw = stream.read()
        try:
            data = super().parse(io.BytesIO(raw), media_type, parser_context)
        except RecursionError:
            raise ParseError(TOO_DEEP) from None
        # UTF-8 bytes hold no surrogate; only a \uD800-\uDFFF escape can make one. Most bodies
        # have none, and skip the walk over every string.
        if SURROGATE_ESCAPE.search(raw) and any(has_lone_surrogate(text) for text in json_strings(data)):
            raise ParseError(LONE_SURROGATE)
        return data
