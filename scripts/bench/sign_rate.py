"""Signed download URLs issued per second by each backend's signer (local HMAC, S3 SigV4, GCS V4 with an
RSA key file), in this process."""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from app.storage.local import LocalBackend


def rate(sign: object, n: int) -> float:
    started = time.perf_counter()
    for i in range(n):
        sign(f"projects/101/dvc/files/md5/ab/{i:030d}", ttl=600)  # type: ignore[operator]
    return n / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=3000)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp())
    backends: dict[str, object] = {
        "local": LocalBackend(root=root / "s", secret_key="k" * 32, public_url=None)
    }

    import os

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    from app.storage.s3 import S3Backend

    backends["s3"] = S3Backend(
        bucket="bench",
        prefix="",
        endpoint_url="http://127.0.0.1:9",
        region="us-east-1",
        addressing_style="path",
    )

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    key_file = root / "sa.json"
    key_file.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": "p",
                "private_key_id": "1",
                "private_key": pem,
                "client_email": "r@p.iam.gserviceaccount.com",
                "client_id": "1",
                "token_uri": "https://oauth2.googleapis.com/token",
            }
        )
    )
    os.environ["GOOGLE_APPLICATION_CREDENTIALS"] = str(key_file)
    from app.storage.gcs import build_gcs_backend

    backends["gcs (key file)"] = build_gcs_backend(
        bucket="bench", prefix="", emulator_host="http://127.0.0.1:9", public_url=None
    )
    for name, backend in backends.items():
        per_second = rate(backend.sign_download, args.n)  # type: ignore[attr-defined]
        print(f"{name:>15}: {per_second:8.0f} signed URLs/s ({1e6 / per_second:.0f} µs each)")


if __name__ == "__main__":
    main()
