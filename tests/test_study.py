"""The claims study command on a tiny grid (the study itself runs outside CI)."""

import json

from deltapref.study import CANDIDATES, END, START, run_study

TINY = {
    "n_train": 80,
    "n_test": 24,
    "seeds": 2,
    "temperatures": (0.5, 1.0),
    "lrs": (5e-4, 2e-3),
    "epochs": (1, 2),
    "splits": True,
    "sft_epochs": 1,
    "scorer_epochs": 1,
}
VERDICTS = {"reproduced", "not reproduced", "inconclusive"}


def test_study_writes_every_claim_with_a_verdict_and_keeps_the_rest(tmp_path):
    results = tmp_path / "RESULTS.md"
    results.write_text(f"# Results\n\nhand-written intro\n\n{START}\nold\n{END}\n\n## Real data\n\nkept\n")
    summary = run_study(TINY, [0, 1], tmp_path / "runs", results, "deltapref study claims (tiny)")
    claims = {row[0] for row in summary["claims"]}
    assert claims == {"C1", "C2", "C3", "C4", "C5", "C6", "C7", "C8"}
    assert all(row[4].split(" (")[0] in VERDICTS for row in summary["claims"]), [row[4] for row in summary["claims"]]
    text = results.read_text()
    assert "hand-written intro" in text and "## Real data\n\nkept" in text and "\nold\n" not in text
    assert text.count(START) == 1 and "C8" in text
    grid = summary["lr_grid"]
    for method, lr in summary["learning_rates"].items():
        if method != "default":
            assert grid[lr][method] == max(grid[other][method] for other in grid)  # chosen on validation
    assert summary["chosen"] in CANDIDATES
    assert summary["chosen"] == max(CANDIDATES, key=lambda m: grid[summary["learning_rates"][m]][m])
    assert set(summary["aim"]) == {0.5, 1.0} and all(p["n"] == 2 for p in summary["aim"].values())
    saved = json.loads((tmp_path / "runs" / "study.json").read_text())
    assert saved["claims"] == summary["claims"]


def test_study_seeds_are_a_count_or_a_list_and_reach_the_runs(tmp_path, monkeypatch):
    """``--seeds 5,6`` runs seeds 5 and 6 (fresh seeds for a verdict), ``--seeds 3`` seeds 0..2; the
    report's command is rendered from the options, without this machine's paths."""
    import deltapref.study as study
    from deltapref.cli import main

    calls = []

    def fake_run_study(profile, seeds, out, results, command):
        calls.append((seeds, command))
        return {"claims": [], "seconds": 0.0}

    monkeypatch.setattr(study, "run_study", fake_run_study)
    out = str(tmp_path / "somewhere" / "runs")
    for seeds in ("5,6", "3"):
        assert main(["study", "claims", "--profile", "quick", "--seeds", seeds, "--output_dir", out]) == 0
    assert calls == [
        ([5, 6], "deltapref study claims --profile quick --seeds 5,6"),
        ([0, 1, 2], "deltapref study claims --profile quick --seeds 3"),
    ]
    for bad in ("1", "4,4", "x"):
        assert main(["study", "claims", "--seeds", bad]) == 2


def test_seed_lists_and_machine_description():
    from deltapref.config import seed_list
    from deltapref.provenance import machine

    assert seed_list("3") == [0, 1, 2] and seed_list("7, 9") == [7, 9]
    assert "CPU cores" in machine() and ("GPU" in machine())
