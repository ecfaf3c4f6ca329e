"""Stage ``deltapref generate``: sample completions for a set of prompts, written atomically as a
dataset (``prompt``, ``completion`` and any ``id`` kept). Under a launcher (torchrun, ``deltapref
launch``) each process completes every world-th prompt and the first writes them all in input
order: with per-prompt seeds (``--paired_sampling``, vLLM's own) the file is the one a single
process writes."""

from __future__ import annotations

import codecs
import contextlib
import functools
from dataclasses import dataclass
from typing import Literal

import datasets

from deltapref.artifacts.outputs import claimed
from deltapref.config.commands import SEED_RANGE, OverwriteOption, option
from deltapref.data.schema import DataError
from deltapref.data.writing import check_data_output, save_dataset
from deltapref.errors import OptionError
from deltapref.models.loading import check_policy, load_causal_lm, load_tokenizer
from deltapref.models.provenance import describe
from deltapref.policy.generation import generate_completions, read_prompts
from deltapref.policy.vllm_backend import load_engine, vllm_completions
from deltapref.training import distributed
from deltapref.training.distributed import say


@dataclass
class GenerateConfig(OverwriteOption):
    model: str = option(None, "policy directory or HF id")
    input: str = option(None, "prompts: any file with a 'prompt' column (pairs and ranked lists work)")
    format: str = option(
        "auto",
        "read --input as preference data of this format (e.g. hh, hh-chat) and take its "
        "prompts; auto: its 'prompt' column as it is",
    )
    output: str = option(None, "where to write completions (.jsonl, .parquet, .json or a directory)")
    max_new_tokens: int = option(32, "longest completion in tokens", ge=1)
    temperature: float = option(0.7, "sampling temperature; 0 decodes greedily", ge=0)
    top_p: float = option(1.0, "nucleus sampling mass", gt=0, le=1)
    top_k: int = option(50, "sample among the k most likely tokens (Hugging Face's default; 0: all)", ge=0)
    num_samples: int = option(1, "completions per prompt", ge=1)
    batch_size: int = option(32, "prompts per generate call", ge=1)
    max_prompt_length: int = option(256, "longest prompt in tokens (keeps its end)", ge=1)
    limit: int = option(None, "only the first N prompts", ge=1)
    seed: int = option(0, "sampling seed (sample j takes seed + j)", **SEED_RANGE)
    paired_sampling: bool = option(
        False,
        "each prompt draws its own random numbers from the seed and its tokens: a completion no longer depends on "
        "its batch, its position or the other prompts, and policies share them on any prompt set (false: Hugging "
        "Face's seeded stream, which arms share only when they run the same prompts in the same batches; "
        "benchmarks/paired_sampling.py)",
    )
    stop: str = option(
        "auto",
        "comma list of stop strings (\\n for a newline); auto: the next '\\n\\nHuman:' / '\\n\\nAssistant:' turn for "
        "transcript-style prompts such as HH's (chat prompts end at the template's end-of-turn token); none: no stops",
    )

    def stops(self) -> list[str] | None:
        if self.stop == "auto":
            return None
        if self.stop == "none":
            return []
        return [codecs.decode(s, "unicode_escape") for s in self.stop.split(",") if s]

    backend: Literal["hf", "vllm"] = option(
        "hf",
        "hf: transformers' generate; vllm: a vLLM engine (optional extra) with the same prompts, stops and "
        "options, each prompt its own seed (greedy: the same tokens)",
    )
    tensor_parallel_size: int = option(
        1, "vllm: GPUs one engine spans (tensor parallelism); under a launcher, each process's engine its own", ge=1
    )
    trust_remote_code: bool = option(False, "allow model repos to run their own code")

    def __post_init__(self):
        super().__post_init__()
        if not self.model or not self.input or not self.output:
            raise ValueError("--model, --input and --output are required")
        check_data_output(self.output)
        try:
            self.stops()
        except UnicodeDecodeError as error:
            raise ValueError(
                f"--stop {self.stop!r}: not a valid escape ({error.reason}); write a newline as \\n"
            ) from None


def generate(config: GenerateConfig) -> int:
    """Entry point of ``deltapref generate``."""
    world = distributed.launched_world_size()
    if world > 1 and config.backend == "hf" and config.temperature > 0 and not config.paired_sampling:
        raise OptionError(
            f"generate in {world} processes samples with --paired_sampling true (each prompt its own random numbers): "
            "otherwise a completion depends on how the prompts were split"
        )
    if config.backend != "vllm" and config.tensor_parallel_size > 1:
        raise OptionError("--tensor_parallel_size is vLLM's: add --backend vllm")
    check_policy(config.model)
    distributed.init_if_launched()
    inputs = [config.model, config.input]
    with (
        claimed(config.output, "generate", inputs=inputs, overwrite=config.overwrite)
        if distributed.is_main()
        else (contextlib.nullcontext())
    ):
        _generate(config)
    distributed.barrier()
    return 0


def _generate(config: GenerateConfig) -> None:
    rows = read_prompts(config.input, config.limit, config.format)
    if not rows:
        raise DataError("holds no prompts: nothing to complete", source=config.input)
    tokenizer = load_tokenizer(config.model, config.trust_remote_code)
    complete = _backend(config, tokenizer)
    mine = list(range(distributed.rank(), len(rows), distributed.world_size()))  # every world-th prompt
    results = []
    for sample in range(config.num_samples):
        local = complete(
            tokenizer,
            [rows[i]["prompt"] for i in mine],
            max_new_tokens=config.max_new_tokens,
            temperature=config.temperature,
            top_p=config.top_p,
            top_k=config.top_k,
            max_prompt_length=config.max_prompt_length,
            seed=config.seed + sample,
            stops=config.stops(),
        )
        completions = distributed.in_order(dict(zip(mine, local)), len(rows))
        results += [dict(row, completion=c, sample=sample, model=config.model) for row, c in zip(rows, completions)]
    if not distributed.is_main():
        return
    meta = {"columns": {"completion": {"model": describe(config.model)}}}
    save_dataset(datasets.Dataset.from_list(results), config.output, "generate", overwrite=config.overwrite, meta=meta)
    say(f"wrote {len(results)} completions to {config.output}")


def _backend(config: GenerateConfig, tokenizer):
    """``complete(tokenizer, prompts, **sampling options)`` on the chosen backend."""
    if config.backend == "vllm":
        length = config.max_prompt_length + config.max_new_tokens
        engine = load_engine(config.model, length, config.trust_remote_code, config.tensor_parallel_size)
        return functools.partial(vllm_completions, engine)
    model = load_causal_lm(config.model, tokenizer, trust_remote_code=config.trust_remote_code)
    return functools.partial(generate_completions, model, batch_size=config.batch_size, paired=config.paired_sampling)
