import sys
from pathlib import Path
sys.path.insert(0, "/work/main"); sys.path.insert(0, "/work/main/tests")
import pytest
from storage_contract import StorageContract
from plugins.storage_files import FileStorage

class TestFiles(StorageContract):
    @pytest.fixture
    def storage_factory(self, tmp_path):
        return lambda: FileStorage.open(tmp_path / "data")
