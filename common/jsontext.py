"""JSON as compact UTF-8 text, one encoder for the write log, and a model field storing it.

A payload is written once and read back once, whole, by the commit: nothing queries inside
it. So the write log keeps it as the text it was accepted as, not as jsonb, which PostgreSQL
parses on every INSERT (about 14 ms of a 1,000-run batch's accept) and prints again for the
commit to read.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models


def _django_default(value: Any) -> Any:
    return DjangoJSONEncoder().default(value)


_encode = msgspec.json.Encoder(enc_hook=_django_default).encode
_decode = msgspec.json.Decoder().decode


def json_utf8(value: Any) -> bytes:
    """A JSON value as compact UTF-8 JSON. msgspec encodes at about a seventh of json.dumps's
    cost (a 1,000-run batch: about 2 ms against 16); a value it has no encoding for goes to
    DjangoJSONEncoder."""
    return _encode(value)


def already_encoded(text: bytes) -> Any:
    """JSON text that json_utf8 gave, for a JSONTextField to store as it is rather than encode
    a second time (json_utf8 passes a msgspec.Raw through unchanged)."""
    return msgspec.Raw(text)


def json_decode(text: str | bytes) -> Any:
    """A JSON text decoded as json.loads would: by msgspec, at about a third of its cost (a
    1,000-run commit's payloads: 7-9 ms against 21). What msgspec refuses and json reads (NaN,
    Infinity, a number past a float's range, a lone surrogate escape) goes to json.loads."""
    try:
        return _decode(text)
    except msgspec.DecodeError:
        return json.loads(text)


class JSONTextField(models.TextField):
    """A JSON value stored as its text (json_utf8), given back decoded, as JSONField would.

    Nothing may look inside it in SQL: it has no JSON lookups. A value nested deeper than
    this process can decode raises RecursionError where it is read.
    """

    # What django-stubs reads for the attribute's type, as on its JSONField.
    _pyi_private_set_type: Any
    _pyi_private_get_type: Any

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        return None if value is None else json_decode(value)

    def to_python(self, value: Any) -> Any:
        return json_decode(value) if isinstance(value, str) else value

    def get_prep_value(self, value: Any) -> Any:
        return None if value is None else json_utf8(value).decode()

    def value_to_string(self, obj: models.Model) -> Any:
        return self.value_from_object(obj)
