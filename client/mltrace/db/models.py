"""The pointer-type enum, where mltrace 0.17 kept it (`mltrace.db.models.PointerTypeEnum`)."""

from __future__ import annotations

import enum


class PointerTypeEnum(str, enum.Enum):
    DATA = "DATA"
    MODEL = "MODEL"
    ENDPOINT = "ENDPOINT"
    UNKNOWN = "UNKNOWN"


DATA_EXTENSIONS = frozenset(("csv", "pq", "parquet", "txt", "md", "rtf", "tsv", "xml", "pdf", "mlt"))
MODEL_EXTENSIONS = frozenset(("h5", "hdf5", "joblib", "pkl", "pickle", "ckpt", "mlmodel"))


def infer_pointer_type(name: str) -> PointerTypeEnum:
    """mltrace's inference of a pointer's type from its name (the server applies the same)."""
    lowered = name.lower()
    if "data" in lowered:
        return PointerTypeEnum.DATA
    if "model" in lowered:
        return PointerTypeEnum.MODEL
    extension = lowered.rsplit(".", 1)[-1]
    if extension in DATA_EXTENSIONS:
        return PointerTypeEnum.DATA
    if extension in MODEL_EXTENSIONS:
        return PointerTypeEnum.MODEL
    return PointerTypeEnum.UNKNOWN
