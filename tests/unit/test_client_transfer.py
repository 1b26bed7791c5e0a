"""A part of an upload that the bucket answers 503 is sent again whole by urllib3's retry (the file slice
rewinds), against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from werkzeug.wrappers import Request, Response

from app.client.retry import patient_retry
from app.client.session import ask, client_session
from app.client.transfer import FileSlice
from scripts.harness import serve_in_thread


class Bucket:
    """Answers 503 to the first PUT, 200 after; keeps every body it got."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        self.bodies.append(Request(environ).get_data())
        return Response(status=503 if len(self.bodies) == 1 else 200)(environ, start_response)


def test_a_retried_part_is_sent_again_whole(tmp_path: Path) -> None:
    file = tmp_path / "w.bin"
    file.write_bytes(bytes(range(256)) * 4096)  # 1 MiB
    bucket = Bucket()
    server = serve_in_thread(bucket)
    try:
        url = f"http://127.0.0.1:{server.server_port}/part?X-Amz-Signature=f00"
        body = FileSlice(file, 1000, 300_000)
        sent = ask(client_session(patient_retry(nap=lambda _: None)), "PUT", url, data=body)
        body.close()
    finally:
        server.shutdown()
        server.server_close()
    assert sent.status_code == 200
    assert bucket.bodies == [file.read_bytes()[1000:301_000]] * 2
