"""Preference data: schema and validation, loaders and adapters, the built-in task, splits,
tokenization."""

from deltapref.data.loading import load_preferences, read_records
from deltapref.data.schema import DataError, ValidationReport, validate_pair, validate_ranked
from deltapref.data.splits import normalized_edit_distance, split_by_difficulty
from deltapref.data.synthetic import SyntheticTaskConfig, gold_reward, write_task
from deltapref.data.tokenization import TokenizationConfig, encode_pair, length_stats
from deltapref.data.writing import save_dataset

__all__ = [
    "DataError",
    "SyntheticTaskConfig",
    "TokenizationConfig",
    "ValidationReport",
    "encode_pair",
    "gold_reward",
    "length_stats",
    "load_preferences",
    "normalized_edit_distance",
    "read_records",
    "save_dataset",
    "split_by_difficulty",
    "validate_pair",
    "validate_ranked",
    "write_task",
]
