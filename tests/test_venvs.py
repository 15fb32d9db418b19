"""tests/venvs.py keeps one venv per requirements file: a changed pin's build removes the old."""

from __future__ import annotations

from tests import venvs


def test_a_new_version_s_venv_removes_the_old_versions_and_no_other_file_s(tmp_path, monkeypatch):
    monkeypatch.setattr(venvs, "CACHE", tmp_path)
    new, old, other = (
        tmp_path / "dbt-00000000000000aa",
        tmp_path / "dbt-00000000000000bb",
        tmp_path / "dbt2-00000000000000cc",
    )
    for venv in (new, old, other):
        venv.mkdir()
        venv.with_suffix(".lock").touch()
    old.with_suffix(".failed").touch()

    venvs._forget_other_versions(new)

    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "dbt-00000000000000aa",
        "dbt-00000000000000aa.lock",
        "dbt2-00000000000000cc",
        "dbt2-00000000000000cc.lock",
    ]
