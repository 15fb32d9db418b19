from __future__ import annotations

import math
import re
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.http.request import RawPostDataException
from django.utils.http import parse_header_parameters
from rest_framework.exceptions import ParseError, UnsupportedMediaType
from rest_framework.parsers import JSONParser
from rest_framework.utils import json

TOO_DEEP = "JSON parse error - nested more than {limit} levels of arrays and objects."
NOT_UTF8 = "Request bodies are JSON in UTF-8; charset={charset} is not accepted."
SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
LONE_SURROGATE = "JSON parse error - a string holds a lone UTF-16 surrogate (\\ud800-\\udfff)."


_CONTAINERS = (dict, list)


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


def json_depth(value: Any) -> int:
    """Levels of arrays and objects in a parsed JSON value (a scalar is 0, [] is 1, [[]] 2).

    Level by level, iterative for deep values: a 1,000-run batch's walk took 13 ms as a stack
    of (item, depth) pairs, 3 ms so.
    """
    depth = 0
    level = [value] if isinstance(value, _CONTAINERS) else []
    while level:
        depth += 1
        below: list[Any] = []
        add = below.append
        for item in level:
            for child in item.values() if isinstance(item, dict) else item:
                if isinstance(child, _CONTAINERS):
                    add(child)
        level = below
    return depth


def body_depth_limit() -> int:
    """How deep a whole body may nest: a field's bound (MLTRACE_MAX_JSON_DEPTH) with room for
    a batch's envelope ({"runs": [{"test_results": ...}]}, 3 levels) and more, so that a field
    a little over its bound gets the field's error, under its index in a batch."""
    return settings.MLTRACE_MAX_JSON_DEPTH + 16


def has_lone_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _charset(media_type: str) -> str:
    try:
        return parse_header_parameters(media_type)[1].get("charset", "utf-8")
    except ValueError:  # a header over Django's length limit
        return "?"


def _is_utf8(charset: str) -> bool:
    return charset.lower().replace("-", "").replace("_", "") == "utf8"


def json_body(request: Any) -> bytes | None:
    """The raw body of a request SafeJSONParser would read (application/json in UTF-8), for a
    view that reads it typed before DRF parses it; None for any other request, and for one
    whose body was read already."""
    media_type = request.content_type or ""
    if media_type.split(";", 1)[0].strip() != "application/json" or not _is_utf8(_charset(media_type)):
        return None
    try:
        return request.body
    except RawPostDataException:
        return None


def _finite_float(text: str) -> float:
    """A JSON number as Python's json reads it, refused as DRF refuses NaN when it does not fit
    a float: 1e400 would be infinity, which no JSON encoder downstream can write back."""
    value = float(text)
    if math.isinf(value):
        json.strict_constant(text)
    return value


class SafeJSONParser(JSONParser):
    """DRF's JSON parser, made safe for everything downstream of it:
    - only UTF-8: another charset is a 415 (in UTF-16 or UTF-32 text, a lone surrogate is
      bytes the check below would not see);
    - a body nested deeper than body_depth_limit() is a 400, before anything recurses on it
      (validation, encoders, the commit's decoder, the admin);
    - a number too large for a float (1e400) is a 400, as DRF's strict JSON makes NaN one;
    - strings that no UTF-8 text can hold (an escaped lone surrogate such as "\\ud800") are a
      400: PostgreSQL, the idempotency digest and every encoder downstream would fail on them.
    """

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        charset = _charset(media_type or "")
        if not _is_utf8(charset):
            raise UnsupportedMediaType(media_type or "", detail=NOT_UTF8.format(charset=charset))
        raw = stream.read()
        limit = body_depth_limit()
        try:
            data = self._load(raw)
        except RecursionError:
            raise ParseError(TOO_DEEP.format(limit=limit)) from None
        # Only a body with more brackets than the limit can nest deeper: most skip the walk.
        if raw.count(b"[") + raw.count(b"{") > limit and json_depth(data) > limit:
            raise ParseError(TOO_DEEP.format(limit=limit))
        # UTF-8 bytes hold no surrogate; only a \uD800-\uDFFF escape can make one. Most bodies
        # have none, and skip the walk over every string.
        if SURROGATE_ESCAPE.search(raw) and any(has_lone_surrogate(text) for text in json_strings(data)):
            raise ParseError(LONE_SURROGATE)
        return data

    def _load(self, raw: bytes) -> Any:
        """DRF's JSONParser.parse, with numbers out of a float's range refused."""
        try:  # UTF-8 only (parse checked the charset); a decoding error is a ValueError too
            return json.loads(
                raw.decode("utf-8"), parse_constant=json.strict_constant, parse_float=_finite_float
            )
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
