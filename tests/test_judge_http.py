"""The HTTP judge against a misbehaving server on 127.0.0.1: a reason phrase that echoes the key,
a reply dripped one byte at a time, replies far over the size cap, dropped connections. Every
case ends in a verdict or one line that never holds the key, within the question's deadline."""

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from deltapref.errors import DeltaprefError
from deltapref.evaluation.judges import FIRST, HTTPJudge, redact

KEY = "sk-test-0123456789abcdef"
VERDICT = json.dumps({"choices": [{"message": {"content": "A"}}]}).encode()


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
