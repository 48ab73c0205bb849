#!/usr/bin/env python3
"""A small local chat-completions API in OpenAI's wire format, for trying
`llm.chat` without an account: it answers every request with a summary of
the last message and reports usage as one token per word (prompt: every
message's words; completion: the answer's). Standard library only.

    python3 scripts/openai-compatible.py 18080
"""

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        if self.path.rstrip("/") not in ("/v1/chat/completions", "/chat/completions"):
            self.answer(404, {"error": {"message": f"no route {self.path}", "type": "invalid_request_error"}})
            return
        length = int(self.headers.get("Content-Length") or 0)
        try:
            request = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            self.answer(400, {"error": {"message": "body is not JSON", "type": "invalid_request_error"}})
            return
        messages = request.get("messages") or []
        last = str(messages[-1].get("content", "")) if messages else ""
        text = f"Summary: {last}"
        prompt = sum(len(str(m.get("content", "")).split()) for m in messages)
        completion = len(text.split())
        self.answer(200, {
            "id": "chatcmpl-local",
            "object": "chat.completion",
            "created": 1764000000,
            "model": request.get("model", "unknown"),
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop",
            }],
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
            },
        })

    def answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 18080
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
