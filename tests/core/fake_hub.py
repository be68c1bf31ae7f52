"""A Hugging Face hub on loopback, serving one model folder, for tests of hub ids (tests never touch the
network). The real huggingface_hub client talks to it through $HF_ENDPOINT: the repository's revision
and file tree, then HEAD and GET of each file, which is how `snapshot_download` fetches a snapshot."""

from __future__ import annotations

import hashlib
import http.server
import json
import threading
from pathlib import Path

SHA = "c0da" * 10  # the one commit of the repository


class FakeHub:
    """`with FakeHub("org/name", folder) as hub:` serves `folder` as `org/name` at `hub.endpoint`;
    `hub.requests` lists what was asked of it ("GET /path", "HEAD /path")."""

    def __init__(self, repo: str, folder: Path):
        self.repo = repo
        self.files = {p.name: p.read_bytes() for p in sorted(Path(folder).iterdir()) if p.is_file()}
        self.requests: list[str] = []
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}"

    def __enter__(self) -> "FakeHub":
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self):
        hub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_HEAD(self):
                self._answer(head=True)

            def do_GET(self):
                self._answer(head=False)

            def _answer(self, head: bool):
                path = self.path.split("?")[0]
                hub.requests.append(f"{self.command} {path}")
                api = f"/api/models/{hub.repo}"
                if path in (api, f"{api}/revision/main", f"{api}/revision/{SHA}"):
                    return self._send(json.dumps({"id": hub.repo, "sha": SHA, "siblings": [
                        {"rfilename": name, "size": len(body)} for name, body in hub.files.items()]}).encode())
                if path.startswith(f"{api}/tree/"):
                    return self._send(json.dumps([
                        {"type": "file", "path": name, "size": len(body), "oid": hashlib.sha1(body).hexdigest()}
                        for name, body in hub.files.items()]).encode())
                prefix = f"/{hub.repo}/resolve/"
                name = path[len(prefix):].split("/", 1)[-1] if path.startswith(prefix) else None
                if name not in hub.files:
                    return self._send(b"", status=404, head=head)
                body = hub.files[name]
                self._send(body, head=head, headers={"X-Repo-Commit": SHA,
                                                     "ETag": f'"{hashlib.sha256(body).hexdigest()}"'})

            def _send(self, body: bytes, status: int = 200, head: bool = False, headers: dict | None = None):
                self.send_response(status)
                for key, value in {"Content-Length": str(len(body)), **(headers or {})}.items():
                    self.send_header(key, value)
                self.end_headers()
                if not head:
                    self.wfile.write(body)

            def log_message(self, *args):
                pass

        return Handler
