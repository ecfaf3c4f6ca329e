"""``deltapref demo``: the built-in gold-reward task end to end on a CPU."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .config import option
from .data.commands import SynthConfig, synth


@dataclass
class DemoConfig:
    output_dir: str = option("deltapref-demo", "where the demo writes its data, models and report")
    quick: bool = option(False, "a smaller task and fewer steps (a few minutes on a laptop CPU)")
    seed: int = option(0, "seed of the task and of every training run")


def demo(config: DemoConfig) -> int:
    size = dict(n_train=600, n_test=150) if config.quick else dict(n_train=2000, n_test=300)
    return synth(SynthConfig(seed=config.seed, output_dir=str(Path(config.output_dir) / "data"), **size))
