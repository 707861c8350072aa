"""The rubric judge against a real chat-completions endpoint on loopback."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from loramem.bench.judge import Judge, JudgeError, parse_scores


def serve(replies: list[str]):
    seen = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append(body["messages"][0]["content"])
            text = replies[min(len(seen), len(replies)) - 1]
            data = json.dumps({"choices": [{"message": {"role": "assistant", "content": text}}]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, f"http://127.0.0.1:{httpd.server_address[1]}/v1", seen


def test_parse_scores():
    assert parse_scores('{"factual_alignment": 8, "completeness": 6, "relevance": 10}')["overall"] == 8
    assert parse_scores("Factual alignment: 4\nCompleteness: 5\nRelevance: 6")["overall"] == 5
    assert parse_scores('{"factual_alignment": 14, "completeness": 6, "relevance": 10}') is None
    assert parse_scores("a fine answer") is None


def test_judge_retries_unusable_replies_then_scores():
    httpd, url, seen = serve(["I think it is good.", '{"factual_alignment": 9, "completeness": 6, "relevance": 9}'])
    try:
        scores = Judge(url, model="judge").score("When was it built?", "In 1642.", "It was built in 1642.")
        assert scores == {"factual_alignment": 9, "completeness": 6, "relevance": 9, "overall": 8}
        assert len(seen) == 2 and "In 1642." in seen[0] and "It was built in 1642." in seen[0]
    finally:
        httpd.shutdown()


def test_judge_gives_up_with_a_clear_error():
    httpd, url, _ = serve(["no idea"])
    try:
        with pytest.raises(JudgeError, match="no scores in 3 replies"):
            Judge(url, model="judge").score("q", "a", "b")
    finally:
        httpd.shutdown()
