#!/usr/bin/env bash
# Install DeepSpeed into a folder beside this environment and run tests/test_deepspeed.py with it
# (ZeRO-2 and ZeRO-3 over two CPU processes). DeepSpeed is not a test dependency: its source
# distribution imports torch while it builds, and pip's isolated build would fetch a CUDA torch.
# --no-deps keeps this environment's torch; its small pure dependencies come along explicitly.
#   scripts/deepspeed_check.sh          DEEPSPEED_DIR=folder (default .deepspeed) keeps the install
set -eu
cd "$(dirname "$0")/.."
target=${DEEPSPEED_DIR:-.deepspeed}
if [ ! -d "$target/deepspeed" ]; then
    pip install --quiet --no-deps --target "$target" deepspeed==0.19.8 hjson ninja py-cpuinfo msgpack einops
fi
PYTHONPATH="$target" python -c "import deepspeed; print('deepspeed', deepspeed.__version__)"
PYTHONPATH="$target" python -m pytest -q -p no:cacheprovider -rs tests/test_deepspeed.py
