#!/usr/bin/env bash
# Run the TRL bridges' tests (DPO and KTO) against each TRL release named (default: the oldest and the newest
# release of pyproject.toml's `trl` range, its "# tested:" line), each installed alone into a scratch folder in front of
# this environment's packages (--no-deps: the rest of the environment is the one CI uses).
#   scripts/trl_range.sh [VERSION ...]      e.g. scripts/trl_range.sh 1.14.2 1.15.0 1.16.0
# Prints one line per version: PASS or FAIL with the first failing test's message.
set -u
cd "$(dirname "$0")/.."
versions=("$@")
if [ ${#versions[@]} -eq 0 ]; then
    versions=($(python -c "import re; print(*re.findall(r'# tested: (\S+) (\S+)', open('pyproject.toml').read())[0])"))
fi
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
status=0
for version in "${versions[@]}"; do
    target="$scratch/trl-$version"
    if ! pip install --quiet --no-deps --target "$target" "trl==$version" >"$scratch/pip.log" 2>&1; then
        echo "trl $version: FAIL (pip install: $(tail -1 "$scratch/pip.log"))"; status=1; continue
    fi
    out=$(PYTHONPATH="$target" python -m pytest -q -p no:cacheprovider tests/test_trl_bridge.py tests/test_trl_kto.py 2>&1)
    if [ $? -eq 0 ]; then
        echo "trl $version: PASS ($(echo "$out" | grep -E '[0-9]+ passed' | tail -1))"
    else
        echo "trl $version: FAIL ($(echo "$out" | grep -E '^(E  |FAILED|ERROR)' | head -2 | tr '\n' ' ' | cut -c1-300))"
        status=1
    fi
done
exit $status
