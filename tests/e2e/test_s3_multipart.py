"""Multipart uploads through the S3 door end to end: boto3's managed transfer (several parts, ten at a
time) and the raw calls, against the registry under gunicorn on local disk, S3 (SeaweedFS) and GCS (the
emulator); the object is read back byte-identical through the door and the data plane."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import boto3
import psutil
import pytest
import requests
from boto3.s3.transfer import TransferConfig
from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import ClientError

from scripts.harness import RegistryServer
from tests.conftest import TOKENS, bearer

PROJECT = "ml/vision"
MiB = 1024 * 1024


def s3(registry: RegistryServer, role: str = "developer") -> BaseClient:
    token = TOKENS[role]
    return boto3.client(
        "s3",
        endpoint_url=f"{registry.url}/{PROJECT}/-/s3",
        aws_access_key_id=token,
        aws_secret_access_key=token,
        region_name="us-east-1",
        config=Config(retries={"max_attempts": 1}),
    )


def error_of(call: Any, **kwargs: Any) -> dict[str, Any]:
    with pytest.raises(ClientError) as raised:
        call(**kwargs)
    return raised.value.response


def plane(registry: RegistryServer, path: str) -> requests.Response:
    url = f"{registry.url}/{PROJECT}/-/data/{path}"
    return requests.get(url, headers=bearer("reporter"), timeout=60)


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def test_boto3_upload_file_in_parts(registry_on_each_backend: RegistryServer, tmp_path: Path) -> None:
    client, bucket = s3(registry_on_each_backend), f"m{uuid.uuid4().hex[:8]}"
    data = os.urandom(17 * MiB + 12345)
    source = tmp_path / "big.bin"
    source.write_bytes(data)
    config = TransferConfig(multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB, max_concurrency=10)
    client.upload_file(str(source), bucket, "models/big.bin", Config=config)
    head = client.head_object(Bucket=bucket, Key="models/big.bin")
    # the object's own md5, as for every object (the index's, what the data plane and listings show)
    assert head["ETag"] == f'"{md5(data)}"' and head["ContentLength"] == len(data)
    target = tmp_path / "back.bin"
    client.download_file(bucket, "models/big.bin", str(target))
    assert target.read_bytes() == data
    got = plane(registry_on_each_backend, f"{bucket}/models/big.bin")
    assert got.status_code == 200 and got.content == data
    assert client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    assert registry_on_each_backend.stored_keys("uploads/") == []  # no part left behind


def test_raw_calls_any_order_resent_parts_and_refusals(registry_on_each_backend: RegistryServer) -> None:
    server = registry_on_each_backend
    client, bucket, key = s3(server), f"r{uuid.uuid4().hex[:8]}", "data/joined.bin"
    upload = client.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    first, second, tail = os.urandom(5 * MiB), os.urandom(5 * MiB + 7), os.urandom(3000)
    # parts in any order; part 1 sent twice, the second one replaces the first
    sent = {
        3: client.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=3, Body=tail)["ETag"],
        2: client.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=2, Body=second)["ETag"],
    }
    client.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=1, Body=os.urandom(6 * MiB))
    sent[1] = client.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=1, Body=first)["ETag"]
    assert sent == {1: f'"{md5(first)}"', 2: f'"{md5(second)}"', 3: f'"{md5(tail)}"'}
    parts = client.list_parts(Bucket=bucket, Key=key, UploadId=upload)["Parts"]
    assert [(p["PartNumber"], p["ETag"], p["Size"]) for p in parts] == [
        (1, sent[1], len(first)),
        (2, sent[2], len(second)),
        (3, sent[3], len(tail)),
    ]
    paged = client.list_parts(Bucket=bucket, Key=key, UploadId=upload, MaxParts=2, PartNumberMarker=1)
    assert [p["PartNumber"] for p in paged["Parts"]] == [2, 3] and not paged["IsTruncated"]
    listed = client.list_multipart_uploads(Bucket=bucket)["Uploads"]
    assert [(u["Key"], u["UploadId"]) for u in listed] == [(key, upload)]

    def complete(numbers: list[int], etags: dict[int, str] = sent) -> dict[str, Any]:
        document = {"Parts": [{"PartNumber": n, "ETag": etags[n]} for n in numbers]}
        return client.complete_multipart_upload(
            Bucket=bucket, Key=key, UploadId=upload, MultipartUpload=document
        )

    assert error_of(lambda **_: complete([2, 1, 3]))["Error"]["Code"] == "InvalidPartOrder"
    wrong = {**sent, 2: f'"{md5(b"other")}"'}
    assert error_of(lambda **_: complete([1, 2, 3], wrong))["Error"]["Code"] == "InvalidPart"
    # a part below 5 MiB anywhere but last
    small_first = client.create_multipart_upload(Bucket=bucket, Key="small.bin")["UploadId"]
    for number, body in ((1, b"tiny"), (2, b"tail")):
        client.upload_part(Bucket=bucket, Key="small.bin", UploadId=small_first, PartNumber=number, Body=body)
    too_small = error_of(
        client.complete_multipart_upload,
        Bucket=bucket,
        Key="small.bin",
        UploadId=small_first,
        MultipartUpload={
            "Parts": [{"PartNumber": n, "ETag": md5(b)} for n, b in ((1, b"tiny"), (2, b"tail"))]
        },
    )
    assert too_small["Error"]["Code"] == "EntityTooSmall"
    client.abort_multipart_upload(Bucket=bucket, Key="small.bin", UploadId=small_first)
    gone = error_of(client.list_parts, Bucket=bucket, Key="small.bin", UploadId=small_first)
    assert gone["Error"]["Code"] == "NoSuchUpload"
    # the refusals left the upload open (as S3 does): now complete it right
    done = complete([1, 2, 3])
    whole = first + second + tail
    joined = hashlib.md5(bytes.fromhex(md5(first)) + bytes.fromhex(md5(second)) + bytes.fromhex(md5(tail)))
    assert done["ETag"] == f'"{joined.hexdigest()}-3"'  # S3's multipart form, what clients expect here
    head = client.head_object(Bucket=bucket, Key=key)
    assert head["ETag"] == f'"{md5(whole)}"' and head["ContentLength"] == len(whole)
    assert client.get_object(Bucket=bucket, Key=key)["Body"].read() == whole
    got = plane(server, f"{bucket}/{key}")
    assert got.content == whole
    assert error_of(lambda **_: complete([1, 2, 3]))["Error"]["Code"] == "NoSuchUpload"
    assert client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    assert server.stored_keys("uploads/") == []


def parts_of(data: bytes, size: int = 5 * MiB) -> list[bytes]:
    return [data[at : at + size] for at in range(0, len(data), size)]


def upload_in_parts(client: BaseClient, bucket: str, key: str, data: bytes) -> dict[str, Any]:
    upload = client.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    listed = [
        {
            "PartNumber": n,
            "ETag": client.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=n, Body=b)["ETag"],
        }
        for n, b in enumerate(parts_of(data), start=1)
    ]
    return client.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=upload, MultipartUpload={"Parts": listed}
    )


def test_content_address_permissions_replacement_and_copy(registry_on_each_backend: RegistryServer) -> None:
    server = registry_on_each_backend
    client, bucket = s3(server), f"c{uuid.uuid4().hex[:8]}"
    data = os.urandom(11 * MiB)
    address = f"files/md5/{md5(data)[:2]}/{md5(data)[2:]}"
    # DVC's content address: the whole object's md5 must match its path, or nothing is kept
    wrong = f"files/md5/{'0' * 2}/{'0' * 30}"
    assert error_of(lambda **_: upload_in_parts(client, bucket, wrong, data))["Error"]["Code"] == "BadDigest"
    assert error_of(client.head_object, Bucket=bucket, Key=wrong)["Error"]["Code"] == "404"
    (left,) = client.list_multipart_uploads(Bucket=bucket)["Uploads"]  # open, as S3 leaves it: abort it
    client.abort_multipart_upload(Bucket=bucket, Key=wrong, UploadId=left["UploadId"])
    upload_in_parts(client, bucket, address, data)
    assert client.head_object(Bucket=bucket, Key=address)["ETag"] == f'"{md5(data)}"'
    # a Reporter reads but cannot start an upload
    refused = error_of(s3(server, "reporter").create_multipart_upload, Bucket=bucket, Key="x.bin")
    assert refused["Error"]["Code"] == "AccessDenied"
    # Complete over an object replaces it; the version it replaces goes to the trash
    client.put_object(Bucket=bucket, Key="model.bin", Body=b"version one")
    newer = os.urandom(6 * MiB)
    upload_in_parts(client, bucket, "model.bin", newer)
    assert client.get_object(Bucket=bucket, Key="model.bin")["Body"].read() == newer
    trash = requests.get(
        f"{server.url}/api/v1/projects/101/trash", headers=bearer("maintainer"), timeout=30
    ).json()
    assert [item["size"] for item in trash["objects"] if item["path"] == f"{bucket}/model.bin"] == [11]
    # UploadPartCopy: byte ranges of an object of this project become parts (what `aws s3 cp` between two
    # keys sends above 8 MB); a range past the end and a source that is not there are refused
    upload = client.create_multipart_upload(Bucket=bucket, Key="copy.bin")["UploadId"]
    source = {"Bucket": bucket, "Key": "model.bin"}
    first = client.upload_part_copy(
        Bucket=bucket,
        Key="copy.bin",
        UploadId=upload,
        PartNumber=1,
        CopySource=source,
        CopySourceRange=f"bytes=0-{5 * MiB - 1}",
    )["CopyPartResult"]
    assert first["ETag"] == f'"{md5(newer[: 5 * MiB])}"'
    rest = client.upload_part_copy(
        Bucket=bucket,
        Key="copy.bin",
        UploadId=upload,
        PartNumber=2,
        CopySource=source,
        CopySourceRange=f"bytes={5 * MiB}-{len(newer) - 1}",
    )["CopyPartResult"]
    past_end = error_of(
        client.upload_part_copy,
        Bucket=bucket,
        Key="copy.bin",
        UploadId=upload,
        PartNumber=3,
        CopySource=source,
        CopySourceRange=f"bytes=0-{len(newer)}",
    )
    assert past_end["Error"]["Code"] == "InvalidArgument"
    missing = error_of(
        client.upload_part_copy,
        Bucket=bucket,
        Key="copy.bin",
        UploadId=upload,
        PartNumber=3,
        CopySource={"Bucket": bucket, "Key": "no-such.bin"},
    )
    assert missing["Error"]["Code"] == "NoSuchKey"
    parts = [{"PartNumber": 1, "ETag": first["ETag"]}, {"PartNumber": 2, "ETag": rest["ETag"]}]
    client.complete_multipart_upload(
        Bucket=bucket, Key="copy.bin", UploadId=upload, MultipartUpload={"Parts": parts}
    )
    assert client.get_object(Bucket=bucket, Key="copy.bin")["Body"].read() == newer
    # a Reporter may read the source but may not write the part
    upload = client.create_multipart_upload(Bucket=bucket, Key="copy2.bin")["UploadId"]
    denied = error_of(
        s3(server, "reporter").upload_part_copy,
        Bucket=bucket,
        Key="copy2.bin",
        UploadId=upload,
        PartNumber=1,
        CopySource=source,
    )
    assert denied["Error"]["Code"] == "AccessDenied"
    client.abort_multipart_upload(Bucket=bucket, Key="copy2.bin", UploadId=upload)
    assert server.stored_keys("uploads/") == []


class PeakRSS:
    """The largest resident set of any gunicorn worker of a registry, sampled every 20 ms in a thread."""

    def __init__(self, server: RegistryServer) -> None:
        self._master = psutil.Process(server.process.pid)
        self.peak, self._stop = 0, threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            for worker in self._master.children(recursive=True):
                with contextlib.suppress(psutil.NoSuchProcess):
                    self.peak = max(self.peak, worker.memory_info().rss)

    def __enter__(self) -> PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def test_200_mb_in_8_mib_parts_keeps_worker_memory_bounded(
    registry_on_each_backend: RegistryServer, tmp_path: Path
) -> None:
    """boto3's defaults (8 MiB parts, ten at a time) for 200 MB: every worker's RSS stays under 200 MB."""
    server = registry_on_each_backend
    if server.env.get("REGISTRY_STORAGE_URL", "").startswith("gs://"):
        pytest.skip("the GCS emulator keeps objects in its memory, which is this test's own process")
    client, bucket = s3(server), f"p{uuid.uuid4().hex[:8]}"
    source = tmp_path / "200mb.bin"
    digest = hashlib.md5()
    with source.open("wb") as out:
        for _ in range(200):
            block = os.urandom(MiB)
            digest.update(block)
            out.write(block)
    with PeakRSS(server) as rss:
        started = time.monotonic()
        client.upload_file(str(source), bucket, "big/200mb.bin")
        took = time.monotonic() - started
    head = client.head_object(Bucket=bucket, Key="big/200mb.bin")
    assert head["ETag"] == f'"{digest.hexdigest()}"' and head["ContentLength"] == 200 * MiB
    print(f"\n200 MB multipart upload: {took:.1f} s, peak worker RSS {rss.peak / MiB:.0f} MiB")
    assert 0 < rss.peak < 200 * MiB


DVC_S3 = Path(__file__).resolve().parents[2] / ".tools" / "dvc-s3" / "bin" / "dvc"


def test_dvc_s3_remote_pushes_a_large_file_in_parts(
    registry_on_each_backend: RegistryServer, tmp_path: Path
) -> None:
    """DVC's s3 remote (s3fs) sends a file of 100 MiB or more as 50 MiB parts, ten at a time; pushed,
    checked against its content address, pulled back whole."""
    server = registry_on_each_backend
    if not DVC_S3.exists():
        pytest.skip(
            "needs dvc with dvc-s3: python3 -m venv .tools/dvc-s3 && .tools/dvc-s3/bin/pip install dvc-s3"
        )
    if server.env.get("REGISTRY_STORAGE_URL", "").startswith("gs://"):
        pytest.skip("the GCS emulator keeps 110 MB in this test's own memory; local and S3 cover the door")
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "DVC_SITE_CACHE_DIR": str(tmp_path / "site-cache")}

    def dvc(*args: str) -> None:
        done = subprocess.run(
            [str(DVC_S3), *args], cwd=tmp_path / "ws", env=env, capture_output=True, text=True, timeout=600
        )
        assert done.returncode == 0, f"dvc {' '.join(args)}:\n{done.stdout}\n{done.stderr}"

    (tmp_path / "ws").mkdir()
    token = TOKENS["developer"]
    dvc("init", "--no-scm")
    bucket = f"d{uuid.uuid4().hex[:8]}"
    dvc("remote", "add", "-d", "registry", f"s3://{bucket}")
    dvc("remote", "modify", "registry", "endpointurl", f"{server.url}/{PROJECT}/-/s3")
    dvc("remote", "modify", "--local", "registry", "access_key_id", token)
    dvc("remote", "modify", "--local", "registry", "secret_access_key", token)
    data = os.urandom(110 * MiB)
    (tmp_path / "ws" / "big.bin").write_bytes(data)
    dvc("add", "big.bin")
    dvc("push")
    creations = f'"POST /{PROJECT}/-/s3/{bucket}/files/md5/{md5(data)[:2]}/{md5(data)[2:]} HTTP/1.1" 200'
    assert server.log_text().count(creations) == 2  # CreateMultipartUpload and Complete: in parts
    shutil.rmtree(tmp_path / "ws" / ".dvc" / "cache")
    (tmp_path / "ws" / "big.bin").unlink()
    dvc("pull")
    assert md5((tmp_path / "ws" / "big.bin").read_bytes()) == md5(data)
    assert server.stored_keys("uploads/") == []
