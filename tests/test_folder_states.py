"""Random sequences of commands on a few shared folders (hypothesis's stateful testing): train,
retrain with other options, LoRA merged and unmerged, cross-fit scorers, partitions, an
interrupted run and its rerun. After every step: nothing outside the outputs changed; what a
folder holds for loading is what the last successful command wrote there (or nothing loadable,
never a mix); a rerun of an interrupted run ends where the uninterrupted run ends.

Guards: training/run_folder.py, artifacts/outputs.py, artifacts/records.py, training/checkpoints.py,
scorers/run.py."""

import hashlib
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from deltapref.artifacts.records import read_marker
from deltapref.cli import main
from helpers import FAST_LR, snapshot

FOLDERS = ("a", "b")
WEIGHTS = ("model.safetensors", "adapter_model.safetensors")


def digest(folder: Path) -> dict[str, str]:
    """What loading ``folder`` would read: its top-level weight files, by content."""
    return {
        name: hashlib.sha256((folder / name).read_bytes()).hexdigest() for name in WEIGHTS if (folder / name).exists()
    }


class Interrupted(KeyboardInterrupt):
    """Ctrl-C after training, before the final model is saved (the checkpoints are complete)."""


@pytest.fixture
def world(builtin_task, tmp_path, monkeypatch):
    return {"task": builtin_task, "root": tmp_path, "monkeypatch": monkeypatch}


def folder_machine(world):
    class Folders(RuleBasedStateMachine):
        @initialize()
        def start(self):
            self.root = world["root"] / f"run-{id(self)}"
            self.root.mkdir()
            self.inputs = snapshot(world["task"])
            self.expected: dict[str, dict] = {}  # folder -> what its last successful command left to load
            self.made_by: dict[str, str] = {}
            self.pending: dict[str, list] = {}  # folder -> the argv of its interrupted run

        def sft(self, folder: str, seed: int, *extra) -> list[str]:
            task = world["task"]
            argv = ["sft", "--model", "tiny:16:1", "--tokenizer", str(task / "tokenizer"), "--max_steps", "3"]
            argv += ["--train_data", str(task / "test.jsonl"), "--seed", str(seed), *FAST_LR, *extra]
            return argv + ["--output_dir", str(self.root / folder), "--per_device_train_batch_size", "16"]

        def succeeded(self, folder: str, command: str) -> None:
            self.expected[folder], self.made_by[folder] = digest(self.root / folder), command
            self.pending.pop(folder, None)

        def ours(self, folder: str, command: str) -> bool:
            return self.made_by.get(folder, command) == command

        def refused(self, folder: str, command: str, seed: int | None = None, lora: bool = False) -> bool:
            """Whether the command must be refused: the folder is another command's, or holds an
            interrupted run with another identity (seed, LoRA)."""
            if not self.ours(folder, command):
                return True
            pending = self.pending.get(folder)
            return pending is not None and (pending[1] != seed or lora)

        @rule(folder=st.sampled_from(FOLDERS), seed=st.integers(0, 1), lora=st.booleans(), merged=st.booleans())
        def train(self, folder, seed, lora, merged):
            extra = ["--lora_r", "4", "--lora_target_modules", "q_proj,v_proj", "--merge_lora", str(merged)]
            code = main(self.sft(folder, seed, *(extra if lora else [])))
            if self.refused(folder, "sft", seed, lora):
                assert code == 1
                return
            assert code == 0
            self.succeeded(folder, "sft")
            unmerged = lora and not merged
            assert set(self.expected[folder]) == {WEIGHTS[1] if unmerged else WEIGHTS[0]}

        @rule(folder=st.sampled_from(FOLDERS), seed=st.integers(0, 1))
        def interrupt(self, folder, seed):
            from deltapref.policy import run

            argv = self.sft(folder, seed, "--save_strategy", "steps", "--save_steps", "1")

            def stop(*args, **kwargs):
                raise Interrupted

            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(run, "final_save", stop)
                code = main(argv)
            if self.refused(folder, "sft", seed):
                assert code == 1
                return
            assert code == 130
            self.pending[folder] = (argv, seed)
            assert digest(self.root / folder) == {}  # nothing loadable: never a mix of two runs

        @rule(folder=st.sampled_from(FOLDERS))
        def rerun(self, folder):
            if folder not in self.pending:
                return
            argv, seed = self.pending[folder]
            assert main(argv) == 0
            self.succeeded(folder, "sft")
            straight = world["root"] / f"straight-{seed}"
            if not straight.exists():
                assert main(argv[:-4] + ["--output_dir", str(straight), *argv[-2:]]) == 0
            assert self.expected[folder][WEIGHTS[0]] == digest(straight)[WEIGHTS[0]]

        @rule(folder=st.sampled_from(FOLDERS))
        def cross_fit(self, folder):
            task = world["task"]
            argv = ["train-scorer", "--model", "tiny:16:1", "--tokenizer", str(task / "tokenizer"), "--max_steps", "2"]
            argv += ["--train_data", str(task / "test.jsonl"), "--cross_fit", "2", *FAST_LR]
            code = main(argv + ["--output_dir", str(self.root / folder)])
            if self.refused(folder, "train-scorer"):
                assert code == 1
                return
            assert code == 0
            self.succeeded(folder, "train-scorer")
            assert sorted(p.name for p in (self.root / folder).glob("fold-*") if p.is_dir()) == ["fold-0", "fold-1"]

        @rule(folder=st.sampled_from(FOLDERS), overwrite=st.booleans(), size=st.sampled_from(["a=10", "c=20"]))
        def partition(self, folder, overwrite, size):
            argv = ["data", "partition", "--input", str(world["task"] / "test.jsonl"), "--parts", f"{size},rest=rest"]
            code = main(argv + ["--output_dir", str(self.root / folder), "--overwrite", str(overwrite)])
            if not overwrite and self.refused(folder, "data partition"):
                assert code == 1
                return
            assert code == 0
            self.succeeded(folder, "data partition")
            parts = sorted(p.name for p in (self.root / folder).iterdir() if p.suffix == ".jsonl")
            assert parts == sorted([f"{size.split('=')[0]}.jsonl", "rest.jsonl"])  # nothing of an earlier run

        @invariant()
        def inputs_unchanged(self):
            if hasattr(self, "inputs"):
                assert snapshot(world["task"]) == self.inputs

        @invariant()
        def each_folder_loads_its_last_successful_run(self):
            for folder, expected in getattr(self, "expected", {}).items():
                here = self.root / folder
                if folder in self.pending:
                    assert digest(here) == {}
                    continue
                assert digest(here) == expected and not (here / ".previous-run").exists()
                assert (read_marker(here) or {}).get("made_by") == self.made_by[folder]

        def teardown(self):
            shutil.rmtree(getattr(self, "root", world["root"] / "none"), ignore_errors=True)

    return Folders


def test_random_sequences_of_commands_keep_every_folder_whole(world):
    machine = folder_machine(world)
    machine.TestCase.settings = settings(
        max_examples=3,
        stateful_step_count=6,
        derandomize=True,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    machine.TestCase().runTest()
