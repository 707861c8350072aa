"""A real OpenAI-compatible chat-completions server on loopback, for the generator tests."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

QA_TEXT = "Q: When did the Velmont Observatory open?\nA: 1887\nQ: Who was its first director?\nA: Edda Falkenrath"
JUDGE_TEXT = '{"factual_alignment": 8, "completeness": 6, "relevance": 10}'  # a rubric judge's reply: overall 8


class Server:
    """A chat-completions endpoint whose behaviour the test picks: ok, judge, junk, slow, 401, flaky."""

    def __init__(self, behaviour: str = "ok") -> None:
        self.behaviour = behaviour
        self.requests: list[dict] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, code: int, body: bytes, kind: str = "application/json") -> None:
                self.send_response(code)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                owner.requests.append({"path": self.path, "auth": self.headers.get("Authorization")})
                self._send(200, json.dumps({"data": [{"id": "served-model"}]}).encode())

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                owner.requests.append({"path": self.path, "body": body, "auth": self.headers.get("Authorization")})
                mode = owner.behaviour
                if mode == "flaky" and len(owner.requests) == 1:
                    return self._send(503, b"warming up", "text/plain")
                if mode == "junk":
                    return self._send(200, b"<html>not an API</html>", "text/html")
                if mode == "wrong-shape":
                    return self._send(200, json.dumps({"result": "hello"}).encode())
                if mode == "unauthorized":
                    return self._send(401, json.dumps({"error": "bad key"}).encode())
                if mode == "slow":
                    time.sleep(1.5)
                content = JUDGE_TEXT if mode == "judge" else QA_TEXT
                reply = {"choices": [{"message": {"role": "assistant", "content": content}}]}
                self._send(200, json.dumps(reply).encode())

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.handle_error = lambda *args: None  # a client that timed out hung up: expected here
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
