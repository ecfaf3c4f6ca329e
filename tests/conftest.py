import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures"
END_TO_END = {
    "test_align.py",
    "test_scorers.py",
    "test_pipeline.py",
    "test_recipes.py",
    "test_distributed.py",
    "test_sharding.py",
    "test_deepspeed.py",
    "test_vllm.py",
    "test_interruptions.py",
    "test_magnitude.py",
    "test_study.py",
    "test_smollm2.py",
    "test_ecosystem.py",
    "test_trl_bridge.py",
    "test_trl_kto.py",
    "test_scorer_kinds.py",
    "test_examples.py",
    "test_api.py",
    "test_lifecycle.py",
    "test_folder_states.py",
    "test_boundaries.py",
    "test_noisy_labels.py",
}


# The heaviest tests (about 6 min here), left out of the default run so that CI stays under 15
# minutes: ``python -m pytest -m heavy`` runs them (docs/GUIDE.md, "Development"). Each is also marked slow.
HEAVY = {
    "test_sharding.py",  # FSDP2 on two processes, both launchers, resume
    "test_smollm2.py::test_align_on_smollm2_without_tuning_flags_stays_near_its_start",  # the real SmolLM2-135M
    "test_smollm2.py::test_smollm2_lora_sft_dpo_and_generation",
    "test_gpu_check.py::test_dry_run_runs_every_check_and_writes_its_summary",  # the GPU check's CPU dry run
    "test_examples.py::test_example_runs[trl_hh_smollm2.py]",  # SmolLM2 + MiniLM inside TRL
    "test_study.py::test_study_writes_every_claim_with_a_verdict_and_keeps_the_rest",  # a tiny claims study
    "test_two_nodes.py",  # torchrun --nnodes 2 on localhost
    "test_distributed.py::test_two_process_generate_writes_what_one_process_writes",
    "test_plan.py::test_every_layout_plan_prints_as_fitting_runs_at_tiny_size",  # the four layouts, as printed
}


def pytest_collection_modifyitems(config, items):
    """Modules that train models end to end are marked slow and run after the unit tests
    (``-m "not slow"`` runs the fast part alone); the heaviest are marked heavy too."""
    for item in items:
        if item.path.name in HEAVY or f"{item.path.name}::{item.name}" in HEAVY:
            item.add_marker(pytest.mark.heavy)
            item.add_marker(pytest.mark.slow)
        elif item.path.name in END_TO_END:
            item.add_marker(pytest.mark.slow)
    items.sort(key=lambda item: item.get_closest_marker("slow") is not None)


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


def tiny_gemma2(softcap: float | None):
    """A 2-layer random Gemma 2 (vocabulary 40, seed 0) whose final logits are soft-capped at
    ``softcap`` (None: plain LM head), for the paths that project only scored positions."""
    import torch
    from transformers import Gemma2Config, Gemma2ForCausalLM

    torch.manual_seed(0)
    config = Gemma2Config(
        vocab_size=40,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=16,
        final_logit_softcapping=softcap,
        attn_logit_softcapping=None,
    )
    return Gemma2ForCausalLM(config).float()


def tiny_training_args(output_dir, **overrides):
    from transformers import TrainingArguments

    values = dict(
        output_dir=str(output_dir),
        learning_rate=1e-3,
        per_device_train_batch_size=16,
        num_train_epochs=1,
        logging_steps=5,
        save_strategy="no",
        report_to="none",
        remove_unused_columns=False,
        disable_tqdm=True,
        seed=0,
        dataloader_pin_memory=False,
    )
    values.update(overrides)
    return TrainingArguments(**values)


@pytest.fixture(scope="session")
def scored_task(builtin_task, tmp_path_factory):
    """The built-in task's train pairs scored by briefly trained tiny reward, difference and
    oracle models, plus an SFT'd tiny policy: what the alignment tests start from."""
    from deltapref.scorers.run import train_one
    from deltapref.stages.align import SFTConfig, train_sft
    from deltapref.stages.score import ScoreConfig, score
    from deltapref.stages.train_scorer import TrainScorerConfig

    root = tmp_path_factory.mktemp("scored")
    tokenizer = str(builtin_task / "tokenizer")
    for kind in ("reward", "difference", "oracle"):
        train_one(
            TrainScorerConfig(
                kind=kind,
                model="tiny:32:1",
                tokenizer=tokenizer,
                max_length=96,
                max_prompt_length=24,
                train_data=str(builtin_task / "train.jsonl"),
            ),
            tiny_training_args(root / kind, max_steps=15),
        )
    score(
        ScoreConfig(
            input=str(builtin_task / "train.jsonl"),
            output=str(root / "train_scored.jsonl"),
            reward_model=str(root / "reward"),
            difference_model=str(root / "difference"),
            oracle=str(root / "oracle"),
        )
    )
    train_sft(
        SFTConfig(model="tiny:32:1", tokenizer=tokenizer, train_data=str(builtin_task / "train.jsonl")),
        tiny_training_args(root / "sft", learning_rate=3e-3, num_train_epochs=2),
    )
    return {
        "root": root,
        "data": str(root / "train_scored.jsonl"),
        "ranked": str(builtin_task / "ranked_train.jsonl"),
        "sft": str(root / "sft"),
        "test": str(builtin_task / "test.jsonl"),
    }


# Property-based tests (tests/test_properties.py) run the same derandomized examples every time,
# so CI is reproducible; HYPOTHESIS_PROFILE=explore searches more (and randomly) on a developer's machine.
from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile(
    "ci", derandomize=True, deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("explore", deadline=None, max_examples=1000, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="module")
def policy(scored_task, tmp_path_factory):
    """A small SFT policy of the module's own (its tests may try to overwrite it)."""
    from deltapref.cli import main
    from helpers import FAST_LR

    out = tmp_path_factory.mktemp("policy") / "sft"
    argv = ["sft", "--model", "tiny:32:1", "--tokenizer", str(Path(scored_task["sft"])), "--max_steps", "2"]
    assert main(argv + ["--train_data", scored_task["test"], "--output_dir", str(out), *FAST_LR]) == 0
    return out
