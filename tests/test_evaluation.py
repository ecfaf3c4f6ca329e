"""Evaluation: judges' verdicts and majority votes, bootstrap intervals, scorer metrics by hand,
`evaluate policy` and `evaluate compare` from the CLI, the report's text forms and tables.

Guards: evaluation/judges.py, evaluation/stats.py, evaluation/scorer_metrics.py,
evaluation/completions.py, stages/evaluate.py, report/text.py, report/tables.py."""

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import numpy as np
import pytest

from deltapref.cli import main
from deltapref.data.synthetic import gold_reward
from deltapref.evaluation.judges import (
    FIRST,
    SECOND,
    TIE,
    UNPARSED,
    HTTPJudge,
    RewardJudge,
    compare,
    majority,
    parse_verdict,
    verdict_both_orders,
)
from deltapref.evaluation.scorer_metrics import accuracy_by_bucket, calibration, pairwise_accuracy, scorer_report
from deltapref.evaluation.stats import bootstrap_ci


def test_first_position_judge_gives_all_ties():
    always_first = lambda prompt, a, b: FIRST  # noqa: E731
    always_first.name = "biased"
    result = compare(["p"] * 5, ["a"] * 5, ["b"] * 5, [always_first])
    assert (result["win"], result["tie"], result["loss"]) == (0, 5, 0) and result["win_rate"] == 0.5


def test_reward_judge_win_tie_loss_counts():
    judge = RewardJudge(lambda p, r: len(r), tie_threshold=1.0)
    result = compare(["p", "p", "p", "p"], ["aaaa", "a", "aa", "aaaaa"], ["a", "aaaa", "a", "aaaaa"], [judge])
    assert (result["win"], result["tie"], result["loss"]) == (1, 2, 1)
    assert result["win_rate"] == pytest.approx((1 + 1) / 4)


def test_majority_vote_over_judges():
    assert majority(["a", "a", "b"]) == "a" and majority(["a", "b", "tie"]) == "tie" and majority(["b", "b"]) == "b"
    prefers_long = RewardJudge(lambda p, r: len(r), name="long")
    prefers_short = RewardJudge(lambda p, r: -len(r), name="short")
    biased = lambda p, a, b: FIRST  # noqa: E731
    biased.name = "biased"
    result = compare(
        ["p"],
        ["long answer"],
        ["short"],
        [prefers_long, prefers_long.__class__(lambda p, r: len(r), name="long2"), prefers_short, biased],
    )
    assert result["judges"]["biased"] == {"win": 0, "tie": 1, "loss": 0, "unparsed_replies": 0}
    assert result["win"] == 0 and result["tie"] == 1  # 2 of 4 judges is no strict majority


def test_parse_verdict():
    assert parse_verdict("A") == FIRST and parse_verdict(" b.") == SECOND
    assert parse_verdict("T") == TIE and parse_verdict("I cannot decide") == UNPARSED
    assert parse_verdict(None) == UNPARSED and parse_verdict(["A"]) == UNPARSED


class _JudgeServer(BaseHTTPRequestHandler):
    seen = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _JudgeServer.seen.append((self.path, self.headers.get("Authorization"), body))
        text = body["messages"][0]["content"]
        first = text.split("Response A:\n")[1].split("\n\nResponse B:")[0]
        second = text.split("Response B:\n")[1].split("\n\n")[0]
        answer = "A" if len(first) > len(second) else "B"  # a consistent judge: prefers the longer
        payload = json.dumps({"choices": [{"message": {"role": "assistant", "content": answer}}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


def test_http_judge_against_a_local_server(monkeypatch):
    server = HTTPServer(("127.0.0.1", 0), _JudgeServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        monkeypatch.setenv("JUDGE_KEY", "secret-123")
        judge = HTTPJudge(f"http://127.0.0.1:{server.server_port}/v1", "judge-model", api_key_env="JUDGE_KEY")
        assert "secret-123" not in repr(judge)
        assert verdict_both_orders(judge, "q", "a much longer answer", "short") == "a"
        result = compare(["q", "q"], ["long answer here", "x"], ["short", "longer one"], [judge])
        assert (result["win"], result["loss"]) == (1, 1)
        path, auth, body = _JudgeServer.seen[0]
        assert path == "/v1/chat/completions" and auth == "Bearer secret-123" and body["model"] == "judge-model"
        assert len(_JudgeServer.seen) == 2 + 4  # every comparison asked in both orders
    finally:
        server.shutdown()


def test_bootstrap_ci_covers_the_mean():
    values = np.random.default_rng(0).normal(1.0, 1.0, size=400)
    ci = bootstrap_ci(values)
    assert ci["low"] < ci["mean"] < ci["high"] and ci["low"] < 1.0 < ci["high"]
    assert ci["high"] - ci["low"] == pytest.approx(2 * 1.96 / 20, rel=0.2)


def test_scorer_metrics_hand_values():
    deltas = [0.5, -0.2, 1.5, 2.5, -3.5, 0.0]
    assert pairwise_accuracy(deltas) == pytest.approx((1 + 0 + 1 + 1 + 0 + 0.5) / 6)
    table = accuracy_by_bucket(deltas)
    assert [b["pairs"] for b in table] == [3, 1, 1, 1]
    assert table[0]["accuracy"] == pytest.approx(0.5) and table[3]["accuracy"] == 0.0
    assert calibration([10.0, 10.0])["ece"] == pytest.approx(1 - 1 / (1 + np.exp(-10)), abs=1e-6)
    report = scorer_report([1.0, -1.0], gold_deltas=[2.0, 1.0], d_reverse=[-1.0, 0.5], d_duplicate=[0.1, -0.3])
    assert report["gold_accuracy"] == 0.5 and report["label_gold_agreement"] == 1.0
    assert report["mean_abs_d_same"] == pytest.approx(0.2) and report["mean_abs_antisymmetry"] == pytest.approx(0.25)


def test_cli_evaluate_policy_and_compare(tmp_path, capsys):
    good = [
        {"id": i, "prompt": "tell me about cat ?", "completion": "cat dog good cat horse nice the cat is good ."}
        for i in range(20)
    ]
    bad = [{"id": i, "prompt": "tell me about cat ?", "completion": "rain bad ."} for i in range(20)]
    for name, rows in (("good", good), ("bad", bad)):
        (tmp_path / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert (
        main(
            ["evaluate", "policy", "--completions", str(tmp_path / "good.jsonl"), "--output", str(tmp_path / "q.json")]
        )
        == 0
    )
    quality = json.loads((tmp_path / "q.json").read_text())
    expected = gold_reward(good[0]["prompt"], good[0]["completion"])  # 20 identical rows: no spread
    assert quality["n"] == 20 and quality["low"] == quality["mean"] == quality["high"] == pytest.approx(expected)
    assert (
        main(
            [
                "evaluate",
                "compare",
                "--a",
                str(tmp_path / "good.jsonl"),
                "--b",
                str(tmp_path / "bad.jsonl"),
                "--output",
                str(tmp_path / "c.json"),
            ]
        )
        == 0
    )
    assert json.loads((tmp_path / "c.json").read_text())["win"] == 20


def test_report_text_forms_are_written_once():
    """The run report, the sweep and the study share one table writer and one interval form."""
    from deltapref.report.text import estimate, markdown_table

    assert markdown_table(["by |score|", "n"], [["0-1", 3]]) == ["| by \\|score\\| | n |", "|---|---|", "| 0-1 | 3 |"]
    assert estimate({"mean": 0.5, "low": 0.25, "high": 0.75}) == "0.500 [0.250, 0.750]"
    assert estimate({"mean": 0.05, "low": -0.01, "high": 0.11}, sign="+") == "+0.050 [-0.010, +0.110]"
    assert estimate({"mean": 0.1234, "low": None}, digits=2) == "0.12"


def test_report_shows_lengths_movement_and_drdo_diagnostics():
    """The policy table carries each method's completion length; the training table how far each
    policy moved and, for DRDO, its student vs oracle margins, their length correlations and the
    run's warnings; a run without diagnostics gets no training table, one without policies (scorers
    only) no policy table."""
    from deltapref.report.tables import make_tables

    base = {"mean": 0.4, "low": 0.3, "high": 0.5, "mean_length": 17.25, "steps_per_second": 0.2, "train_loss": 0.6}
    moved = {"logps_chosen_first": -84.9, "logps_chosen_last": -81.3, "logps_rejected_first": -82.9}
    moved |= {"logps_rejected_last": -87.6, "relative_movement": 0.055}
    drdo = {**moved, "student_margin_mean": 0.0164, "oracle_margin_mean": 0.0808, "corr_student_oracle": 0.295}
    drdo |= {"corr_student_length": -0.595, "corr_oracle_length": -0.488}
    policies = {
        "sft": dict(base, objective="sft"),
        "ipo": {**base, "train_loss": 22.8, "objective": "ipo"},
        "dpo": {**base, "diagnostics": moved, "warnings": []},
        "drdo": {**base, "diagnostics": drdo, "warnings": ["the policy barely moved: ..."]},
    }
    tables = make_tables({"reward": "judge", "policies": policies, "scorers": {}}, [])
    (_, head, rows), (caption, train_head, train_rows) = tables
    assert head[3] == "mean length (words)" and rows[0][3] == "17.2"
    assert head[-1] == "train loss (its own objective's)"
    assert [r[-1] for r in rows[:2]] == ["0.600 (sft)", "22.800 (ipo)"]
    assert caption.startswith("Training") and [r[0] for r in train_rows] == ["dpo", "drdo"]
    assert train_rows[0][1:5] == ["-84.9 → -81.3", "-82.9 → -87.6", "5.5%", "—"]
    assert train_rows[1][4:] == ["0.016 / 0.081", "0.29", "-0.59 / -0.49", "the policy barely moved: ..."]
    assert len(make_tables({"reward": "gold", "policies": {"sft": dict(base)}, "scorers": {}}, [])) == 1
    bucket = {"bucket": "0-1", "accuracy": 0.6, "pairs": 5}
    scorer = {"kind": "reward", "accuracy": 0.6, "ece": 0.04, "by_bucket": [bucket]}
    scorer_only = make_tables({"reward": "gold", "policies": {}, "scorers": {"reward": scorer}}, [])
    assert [caption.split(" ")[0] for caption, _, _ in scorer_only] == ["Scorers", "Accuracy"]
