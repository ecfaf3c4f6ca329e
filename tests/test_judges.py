"""Judges: the HTTP judge against a misbehaving server on 127.0.0.1 (a reason phrase that echoes
the key, a reply dripped one byte at a time, replies over the size cap, dropped connections,
replies without a verdict), unknown judges, repeated ids, non-finite metrics. Every case ends
in a verdict or one line that never holds the key.

Guards: evaluation/judges.py, evaluation/scorer_metrics.py, evaluation/stats.py."""

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer, ThreadingHTTPServer

import pytest

from deltapref.cli import main
from deltapref.errors import DeltaprefError
from deltapref.evaluation.judges import FIRST, HTTPJudge, redact
from deltapref.evaluation.scorer_metrics import scorer_report
from deltapref.evaluation.stats import bootstrap_ci
from helpers import fails, write_rows


class FailingJudge(BaseHTTPRequestHandler):
    calls = 0

    def do_POST(self):
        FailingJudge.calls += 1
        self.send_response(503)
        self.end_headers()

    def log_message(self, *args):
        pass


class RepliesJudge(BaseHTTPRequestHandler):
    """An OpenAI-style endpoint whose replies are, in turn, the items of ``replies``."""

    replies: list = []
    calls = 0

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        content = RepliesJudge.replies[RepliesJudge.calls % len(RepliesJudge.replies)]
        RepliesJudge.calls += 1
        body = json.dumps({"choices": [{"message": {"content": content}}]}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server(monkeypatch):
    monkeypatch.setenv("JUDGE_KEY", KEY)
    Judge.calls = 0
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Judge)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_port}/v1"
    httpd.shutdown()
    httpd.server_close()


def judge(url, **options):
    return HTTPJudge(url, "m", api_key_env="JUDGE_KEY", backoff=0.01, **options)


class Judge(BaseHTTPRequestHandler):
    """Each request takes the next behaviour from ``plan`` (the last one repeats)."""

    plan: list[str] = []
    calls = 0

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        Judge.calls += 1
        behaviour = Judge.plan[min(Judge.calls, len(Judge.plan)) - 1]
        if behaviour == "echo-500":
            self.send_response(500, f"failed for {self.headers.get('Authorization')}")
            self.end_headers()
        elif behaviour == "drop":
            self.connection.shutdown(socket.SHUT_RDWR)
        elif behaviour == "drip":
            self.send_response(200)
            self.send_header("Content-Length", str(len(VERDICT)))
            self.end_headers()
            for byte in VERDICT:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(0.4)
        elif behaviour == "huge":
            self.send_response(200)
            self.end_headers()  # no Content-Length: the size is only known by reading
            block = b" " * (1 << 16)
            try:
                for _ in range(6400):  # 400 MB if read whole
                    self.wfile.write(block)
            except OSError:
                pass
        else:
            self.send_response(200)
            self.send_header("Content-Length", str(len(VERDICT)))
            self.end_headers()
            self.wfile.write(VERDICT)

    def log_message(self, *args):
        pass


KEY = "sk-test-0123456789abcdef"


VERDICT = json.dumps({"choices": [{"message": {"content": "A"}}]}).encode()


def test_metrics_refuse_non_finite_values():
    with pytest.raises(DeltaprefError, match="1 of 3 values are not finite"):
        bootstrap_ci([1.0, float("nan"), 2.0])
    with pytest.raises(DeltaprefError, match="scores are not finite"):
        scorer_report([0.5, float("inf")])


def test_a_failing_http_judge_is_retried_then_named_without_the_key(capsys, tmp_path, monkeypatch):
    server = HTTPServer(("127.0.0.1", 0), FailingJudge)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("JUDGE_KEY", "sk-secret-123")
    rows = [{"id": 0, "prompt": "p", "completion": "a"}]
    a, b = write_rows(tmp_path / "a.jsonl", rows), write_rows(tmp_path / "b.jsonl", rows)
    url = f"http://127.0.0.1:{server.server_port}/v1"
    try:
        line = fails(
            capsys,
            [
                "evaluate",
                "compare",
                "--a",
                a,
                "--b",
                b,
                "--judges",
                f"http:judge-m@{url}",
                "--api_key_env",
                "JUDGE_KEY",
                "--judge_attempts",
                "3",
                "--judge_backoff",
                "0.01",
            ],
            1,
            f"judge http:judge-m at {url}/chat/completions failed after 3 attempt.s.: HTTP 503",
        )
    finally:
        server.shutdown()
        server.server_close()
    assert FailingJudge.calls == 3 and "sk-secret" not in line
    port = server.server_port  # now closed: connection refused
    fails(
        capsys,
        [
            "evaluate",
            "compare",
            "--a",
            a,
            "--b",
            b,
            "--judges",
            f"http:m@http://127.0.0.1:{port}/v1",
            "--judge_attempts",
            "2",
            "--judge_backoff",
            "0",
        ],
        1,
        "failed after 2 attempt.s.: ConnectionError",
    )


def test_an_unknown_judge_is_one_line(capsys, tmp_path):
    a = write_rows(tmp_path / "a.jsonl", [{"prompt": "p", "completion": "a"}])
    fails(capsys, ["evaluate", "compare", "--a", a, "--b", a, "--judges", "oracle:x"], 1, "unknown judge 'oracle:x'")


def test_judge_replies_without_a_verdict_are_counted_and_warned(capsys, tmp_path):
    """Replies that are not text (null, a list) or hold no A/B/T count as ties, and are reported."""
    RepliesJudge.replies, RepliesJudge.calls = [None, ["A"], "I cannot say", "A", "A", "B"], 0
    server = HTTPServer(("127.0.0.1", 0), RepliesJudge)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    rows = [{"id": i, "prompt": f"p{i}", "completion": f"c{i}"} for i in range(3)]
    a, b = write_rows(tmp_path / "a.jsonl", rows), write_rows(tmp_path / "b.jsonl", rows)
    url = f"http://127.0.0.1:{server.server_port}/v1"
    try:
        argv = ["evaluate", "compare", "--a", a, "--b", b, "--judges", f"http:m@{url}"]
        assert main(argv + ["--output", str(tmp_path / "c.json")]) == 0
    finally:
        server.shutdown()
        server.server_close()
    captured = capsys.readouterr()
    assert "WARNING: judge http:m gave no verdict (A, B or T) in 3 of 6 replies" in captured.err
    result = json.loads((tmp_path / "c.json").read_text())
    assert result["judges"]["http:m"] == {"win": 1, "tie": 2, "loss": 0, "unparsed_replies": 3}


def test_compare_refuses_repeated_ids(capsys, tmp_path):
    rows = [{"id": 0, "prompt": "p", "completion": "a"}, {"id": 0, "prompt": "p", "completion": "b"}]
    a = write_rows(tmp_path / "a.jsonl", rows)
    b = write_rows(tmp_path / "b.jsonl", rows[:1])
    fails(capsys, ["evaluate", "compare", "--a", a, "--b", b, "--judges", "gold"], 1, "A repeats id.s. 0")


def test_a_reason_phrase_echoing_the_key_never_reaches_the_message(server, capsys):
    Judge.plan = ["echo-500"]
    with pytest.raises(DeltaprefError) as raised:
        judge(server, attempts=2)("p", "a", "b")
    assert KEY not in str(raised.value) and "HTTP 500" in str(raised.value)
    assert KEY not in capsys.readouterr().err and Judge.calls == 2


def test_a_dripped_reply_is_cut_at_the_deadline(server):
    Judge.plan = ["drip"]
    started = time.monotonic()
    with pytest.raises(DeltaprefError, match="deadline"):
        judge(server, attempts=3, deadline=1.5, timeout=5)("p", "a", "b")
    assert time.monotonic() - started < 3.0


def test_a_huge_reply_is_refused_at_the_cap(server):
    Judge.plan = ["huge"]
    with pytest.raises(DeltaprefError, match="byte cap"):
        judge(server, attempts=3)("p", "a", "b")
    assert Judge.calls == 1  # too large is final: not asked again


def test_dropped_connections_are_retried(server):
    Judge.plan = ["drop", "drop", "ok"]
    assert judge(server, attempts=3)("p", "a", "b") == FIRST
    assert Judge.calls == 3


def test_redact_removes_every_form_of_the_secret():
    text = f"Bearer {KEY} / {KEY.replace('-', '%2D')} / quoted {KEY!r}"
    assert KEY not in redact(text, KEY)
    assert redact("nothing here", KEY, None) == "nothing here"


def test_credentials_in_the_url_are_never_shown(server):
    Judge.plan = ["echo-500"]
    url = server.replace("http://", "http://user:url-secret-42@")
    with pytest.raises(DeltaprefError) as raised:
        judge(url, attempts=1)("p", "a", "b")
    assert "url-secret-42" not in str(raised.value) and "user:" not in str(raised.value)
    assert "url-secret-42" not in repr(judge(url))
