"""Preference data: schema and validation, loaders and adapters, the built-in task, splits,
tokenization."""

from .loading import load_preferences, read_records
from .schema import DataError, ValidationReport, validate_pair, validate_ranked
from .splits import normalized_edit_distance, split_by_difficulty
from .synthetic import SyntheticTaskConfig, gold_reward, write_task
from .tokenization import TokenizationConfig, encode_pair, length_stats
from .writing import save_dataset

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
