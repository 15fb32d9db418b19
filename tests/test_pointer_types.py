"""The server and the client infer the same pointer type from the same name.

A pointer sent without a type takes the one inferred from its name: by the client
(`mltrace.db.models.infer_pointer_type`, client/mltrace, which registers it with that type)
and by the server (`runs.models.infer_pointer_type`, when a run names it by name only). The
two are separate copies, since the client imports nothing of the server. This checks that
both give the type written in a table covering every rule and its edges, that both keep the
same extension lists, and that they agree on generated names, so that a rule changed on one
side alone fails here.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from mltrace.db import models as client

from runs import models as server

DATA, MODEL, UNKNOWN = "DATA", "MODEL", "UNKNOWN"

# The extensions each rule names, written out here so that adding or dropping one on either
# side fails the test until this table says the same.
DATA_EXTENSIONS = {"csv", "pq", "parquet", "txt", "md", "rtf", "tsv", "xml", "pdf", "mlt"}
MODEL_EXTENSIONS = {"h5", "hdf5", "joblib", "pkl", "pickle", "ckpt", "mlmodel"}

NAMES = {
    # "data" anywhere in the name, in any case, before every other rule
    "data": DATA,
    "DaTa": DATA,
    "metadata.json": DATA,
    "training_data": DATA,
    "data_model.pkl": DATA,  # before "model" and before the extension
    "model_data": DATA,
    "datamodel": DATA,
    # then "model" anywhere, in any case, before the extension
    "model": MODEL,
    "MODEL": MODEL,
    "modelling.txt": MODEL,
    "model.csv": MODEL,
    "s3://bucket/models/latest": MODEL,
    # then the extension: what follows the last dot, in any case
    "clean.csv": DATA,
    "CLEAN.CSV": DATA,
    "features.Parquet": DATA,
    "a.pkl.csv": DATA,
    "a.csv.pkl": MODEL,
    "weights.H5": MODEL,
    "net.ckpt": MODEL,
    "s3://bucket/x.parquet": DATA,
    "clean .csv": DATA,  # the space is before the dot
    ".pkl": MODEL,  # a hidden file: all extension
    "csv": DATA,  # no dot: the whole name is the extension
    "pkl": MODEL,
    # no rule: UNKNOWN, never ENDPOINT
    "": UNKNOWN,
    "pred_1": UNKNOWN,
    "endpoint": UNKNOWN,
    "https://api.example.com/predict": UNKNOWN,
    "clean.": UNKNOWN,  # an empty extension
    "clean.csv ": UNKNOWN,  # the extension is "csv "
    "clean.csv.gz": UNKNOWN,  # only the last extension counts
    "x.csv?version=2": UNKNOWN,
    "dir.csv/file": UNKNOWN,
    "mod.el": UNKNOWN,
    "d.ata": UNKNOWN,
    "clean.csvx": UNKNOWN,
    "clean.jsonl": UNKNOWN,
    "archive.tar": UNKNOWN,
    "MLT": DATA,  # and one whole-name extension in upper case
    **{f"file.{extension}": DATA for extension in DATA_EXTENSIONS},
    **{f"FILE.{extension.upper()}": DATA for extension in DATA_EXTENSIONS},
    **{f"file.{extension}": MODEL for extension in MODEL_EXTENSIONS},
    **{f"FILE.{extension.upper()}": MODEL for extension in MODEL_EXTENSIONS},
}


def test_the_client_package_is_the_one_installed():
    assert client.PointerTypeEnum.DATA.value == DATA  # `import mltrace` found the client


@pytest.mark.parametrize(("name", "expected"), sorted(NAMES.items()))
def test_both_sides_infer_the_type_in_the_table(name, expected):
    assert server.infer_pointer_type(name).value == expected
    assert client.infer_pointer_type(name).value == expected


def test_both_sides_keep_the_same_extensions():
    assert set(server.DATA_EXTENSIONS) == set(client.DATA_EXTENSIONS) == DATA_EXTENSIONS
    assert set(server.MODEL_EXTENSIONS) == set(client.MODEL_EXTENSIONS) == MODEL_EXTENSIONS


def test_both_sides_know_the_same_types():
    assert set(server.PointerType.values) == {member.value for member in client.PointerTypeEnum}


# Names made of the pieces the rules look at, so that generated names reach every rule.
PIECES = st.sampled_from(
    ["data", "DATA", "dAtA", "model", "Model", "da", "ta", "mod", "el", ".", "/", " ", "x", "_", "?"]
    + sorted(DATA_EXTENSIONS | MODEL_EXTENSIONS)
    + [extension.upper() for extension in sorted(DATA_EXTENSIONS | MODEL_EXTENSIONS)]
)


@given(st.lists(PIECES, max_size=8).map("".join) | st.text(max_size=20))
def test_both_sides_agree_on_any_name(name):
    assert server.infer_pointer_type(name).value == client.infer_pointer_type(name).value
