"""Does running forwards in length groups change the demo's outcomes? The built-in demo at one
seed, twice in fresh processes: as shipped (training batches in groups of similar length) and
with every batch in one padded pass (``grouping.GROUP_COST_TOKENS`` too high for any split);
then every number of the two ``report/results.json`` files side by side.

    python benchmarks/demo_grouping.py [--quick] [--seed 0]

Prints the largest absolute difference per top-level section and the ten largest differences.
Exact equality is not expected: a group's matmuls sum in another order (float rounding), and a
model with dropout draws its masks per pass.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RUN = """
import sys
import deltapref.forward.length_groups as grouping
if sys.argv[1] == "one-pass":
    grouping.GROUP_COST_TOKENS = 10**12
from deltapref.cli import main
sys.exit(main(sys.argv[2:]))
"""


MACHINE = ("steps_per_second", "peak_rss_mb", "seconds")  # speed and memory: not outcomes


def numbers(value, path=()):
    """(path, number) for every outcome number in a JSON value."""
    if isinstance(value, bool) or (path and any(word in path[-1] for word in MACHINE)):
        return
    if isinstance(value, (int, float)):
        yield path, float(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from numbers(item, path + (str(key),))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from numbers(item, path + (str(i),))


def run_demo(mode: str, out: Path, quick: bool, seed: int) -> dict:
    started = time.perf_counter()
    flags = ["demo", "--output_dir", str(out), "--seed", str(seed)] + (["--quick"] if quick else [])
    subprocess.run([sys.executable, "-c", RUN, mode] + flags, check=True, capture_output=True, text=True)
    print(f"{mode}: {time.perf_counter() - started:.0f} s")
    return json.loads((out / "report" / "results.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    a = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="deltapref-demo-grouping-"))
    results = {mode: run_demo(mode, work / mode, a.quick, a.seed) for mode in ("grouped", "one-pass")}
    print("mean gold reward per policy (grouped, one pass):")
    for name, policy in results["grouped"]["policies"].items():
        print(f"  {name}: {policy['mean']:.4f} vs {results['one-pass']['policies'][name]['mean']:.4f}")
    print("held-out accuracy per scorer (grouped, one pass):")
    for name, scorer in results["grouped"]["scorers"].items():
        print(f"  {name}: {scorer.get('accuracy')} vs {results['one-pass']['scorers'][name].get('accuracy')}")
    grouped, one_pass = (dict(numbers(results[mode])) for mode in ("grouped", "one-pass"))
    common = sorted(set(grouped) & set(one_pass))
    gaps = {path: abs(grouped[path] - one_pass[path]) for path in common}
    print(f"{len(common)} numbers in both ({len(set(grouped) ^ set(one_pass))} in one only)")
    for section in sorted({path[0] for path in common}):
        worst = max(gap for path, gap in gaps.items() if path[0] == section)
        print(f"  {section}: largest |difference| {worst:.3g}")
    print("largest differences (grouped, one pass):")
    for path in sorted(gaps, key=gaps.get, reverse=True)[:10]:
        print(f"  {'/'.join(path)}: {grouped[path]:.6g} vs {one_pass[path]:.6g}")


if __name__ == "__main__":
    main()
