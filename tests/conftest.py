import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session")
def fixtures() -> Path:
    return FIXTURES


@pytest.fixture(scope="session")
def builtin_task(tmp_path_factory):
    """A small built-in task written once per test session."""
    from deltapref.data.synthetic import SyntheticTaskConfig, write_task

    directory = tmp_path_factory.mktemp("builtin")
    write_task(SyntheticTaskConfig(seed=0, n_train=400, n_test=120), directory)
    return directory
