"""The default backend, files of collections: the shared contract, plus what only a file
backend can get wrong (torn lines, damaged files, migration of an older folder)."""

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from storage_contract import StorageContract  # noqa: E402
from plugins.storage_files import FileStorage  # noqa: E402


class TestFilesContract(StorageContract):
    @pytest.fixture
    def storage_factory(self, tmp_path):
        return lambda collections=None: FileStorage.open(tmp_path / "data", collections)


def disk_full(monkeypatch):
    """Every write of file data fails from now on as on a full disk (appends, and the replace
    at the end of an atomic write)."""
    def no_space(*args, **kwargs):
        raise OSError(28, "No space left on device")

    for name in ("pwrite", "write", "replace"):
        monkeypatch.setattr(os, name, no_space)
