"""saved_models/MANIFEST.json matches the committed reference exports byte for byte."""

import hashlib
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "saved_models"
MANIFEST = ROOT / "MANIFEST.json"
NOT_LISTED = {"best.keras"}


def _entries():
    if not MANIFEST.exists():
        return []
    return sorted(json.loads(MANIFEST.read_text()).items())


def test_manifest_exists_and_lists_runs():
    entries = _entries()
    assert entries, "saved_models/MANIFEST.json is missing or empty"
    for name, entry in entries:
        assert entry["command"].startswith("python -m apps."), name
        assert entry["files"], name


@pytest.mark.parametrize("name,entry", _entries(), ids=[n for n, _ in _entries()])
def test_every_listed_file_matches_its_sha256(name, entry):
    folder = ROOT / name
    for rel, digest in entry["files"].items():
        path = folder / rel
        assert path.is_file(), f"{name}/{rel} is listed but missing"
        assert hashlib.sha256(path.read_bytes()).hexdigest() == digest, f"{name}/{rel} changed since the manifest"
    present = {p.relative_to(folder).as_posix() for p in folder.rglob("*")
               if p.is_file() and p.name not in NOT_LISTED and not p.name.startswith(".")}
    assert present == set(entry["files"]), f"{name}: files on disk and in the manifest differ"
