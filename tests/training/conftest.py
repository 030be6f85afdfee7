"""Fixtures for the training-library tests: one TFDS data_dir shared by the whole session."""
import pytest


@pytest.fixture(scope="session")
def shared_data_dir(tmp_path_factory):
    """A data_dir under the session's base temp dir (the same path in tests/trainers)."""
    path = tmp_path_factory.getbasetemp() / "shared_tfds_data"
    path.mkdir(exist_ok=True)
    return str(path)
