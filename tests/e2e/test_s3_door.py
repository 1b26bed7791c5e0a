"""The S3 door end to end: boto3 (current, default configuration) against the registry under gunicorn, on
local disk and on SeaweedFS; the same objects through the data plane; permissions and S3 error shapes."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from botocore import UNSIGNED
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.client import BaseClient
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from scripts.harness import RegistryServer, Simulator, start_registry, start_simulator
from tests.conftest import TOKENS, bearer, storage_env

PROJECT = "ml/vision"


@pytest.fixture(scope="module", params=["local", "s3"])
def door(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, gitlab: Simulator
) -> Iterator[RegistryServer]:
    """The registry on local disk and on S3 (SeaweedFS); the trash is on by default."""
    server = start_registry(
        tmp_path_factory.mktemp("registry"), gitlab.url, **storage_env(request.param, request)
    )
    yield server
    server.stop()


def s3(
    registry: RegistryServer, role: str = "maintainer", *, secret: str | None = None, **config: Any
) -> BaseClient:
    token = TOKENS[role]
    return boto3.client(
        "s3",
        endpoint_url=f"{registry.url}/{PROJECT}/-/s3",
        aws_access_key_id=token,
        aws_secret_access_key=secret or token,
        region_name="us-east-1",
        config=Config(retries={"max_attempts": 1}, **config),
    )


def error_of(call: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
    with pytest.raises(ClientError) as raised:
        call(*args, **kwargs)
    return raised.value.response


def data_url(registry: RegistryServer, path: str) -> str:
    return f"{registry.url}/{PROJECT}/-/data/{path}"


def test_put_get_head_list_delete_round_trip(door: RegistryServer) -> None:
    client, bucket = s3(door), f"b{uuid.uuid4().hex[:8]}"
    body = b"hello through the door\n" * 100
    put = client.put_object(Bucket=bucket, Key="dir/a.txt", Body=body)
    assert put["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'
    got = client.get_object(Bucket=bucket, Key="dir/a.txt")
    assert got["Body"].read() == body and got["ContentLength"] == len(body)
    head = client.head_object(Bucket=bucket, Key="dir/a.txt")
    assert head["ETag"] == put["ETag"] and head["ContentLength"] == len(body)
    ranged = client.get_object(Bucket=bucket, Key="dir/a.txt", Range="bytes=6-12")
    assert ranged["Body"].read() == body[6:13] and ranged["ResponseMetadata"]["HTTPStatusCode"] == 206
    # one object, every door: the data plane reads it byte-identical, and the door reads what it PUTs
    plane = requests.get(data_url(door, f"{bucket}/dir/a.txt"), headers=bearer("maintainer"), timeout=30)
    assert plane.status_code == 200 and plane.content == body
    other = b"\x00\x01 from the data plane"
    put_plane = requests.put(
        data_url(door, f"{bucket}/dir/b.bin"), data=other, headers=bearer("developer"), timeout=30
    )
    assert put_plane.status_code == 201
    assert client.get_object(Bucket=bucket, Key="dir/b.bin")["Body"].read() == other
    listed = client.list_objects_v2(Bucket=bucket, Prefix="dir/")
    assert [o["Key"] for o in listed["Contents"]] == ["dir/a.txt", "dir/b.bin"]
    assert listed["KeyCount"] == 2 and not listed["IsTruncated"]
    client.delete_object(Bucket=bucket, Key="dir/a.txt")
    assert error_of(client.get_object, Bucket=bucket, Key="dir/a.txt")["Error"]["Code"] == "NoSuchKey"
    assert client.delete_object(Bucket=bucket, Key="never/was")["ResponseMetadata"]["HTTPStatusCode"] == 204


def test_listings_page_and_roll_up(door: RegistryServer) -> None:
    client, bucket = s3(door), f"l{uuid.uuid4().hex[:8]}"
    keys = [f"files/md5/{d:02x}/n{n}" for d in range(3) for n in range(3)] + ["top 1.txt", "x+y/z"]
    for key in keys:
        client.put_object(Bucket=bucket, Key=key, Body=key.encode())
    assert sorted(keys) == [o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]]
    rolled = client.list_objects_v2(Bucket=bucket, Delimiter="/")
    assert [p["Prefix"] for p in rolled["CommonPrefixes"]] == ["files/", "x+y/"]
    assert [o["Key"] for o in rolled["Contents"]] == ["top 1.txt"]
    under = client.list_objects_v2(Bucket=bucket, Prefix="files/md5/", Delimiter="/", MaxKeys=2)
    assert [p["Prefix"] for p in under["CommonPrefixes"]] == ["files/md5/00/", "files/md5/01/"]
    assert under["IsTruncated"]
    rest = client.list_objects_v2(
        Bucket=bucket, Prefix="files/md5/", Delimiter="/", ContinuationToken=under["NextContinuationToken"]
    )
    assert [p["Prefix"] for p in rest["CommonPrefixes"]] == ["files/md5/02/"] and not rest["IsTruncated"]
    paged, token = [], None
    while True:
        kwargs = {"ContinuationToken": token} if token else {}
        page = client.list_objects_v2(Bucket=bucket, MaxKeys=4, **kwargs)
        paged += [o["Key"] for o in page.get("Contents", [])]
        if not page["IsTruncated"]:
            break
        token = page["NextContinuationToken"]
    assert paged == sorted(keys)
    after = client.list_objects_v2(Bucket=bucket, StartAfter="files/md5/02/")
    assert after["Contents"][0]["Key"].startswith("files/md5/02/")
    v1 = client.list_objects(Bucket=bucket, Prefix="files/md5/01/", MaxKeys=2)
    assert len(v1["Contents"]) == 2 and v1["IsTruncated"]
    v1_rest = client.list_objects(Bucket=bucket, Prefix="files/md5/01/", Marker=v1["Contents"][-1]["Key"])
    assert len(v1_rest["Contents"]) == 1
    # the paginator (what aws s3 ls and s3fs use) sees every key once
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, PaginationConfig={"PageSize": 3})
    assert [o["Key"] for page in pages for o in page.get("Contents", [])] == sorted(keys)


def test_buckets_are_top_level_folders(door: RegistryServer) -> None:
    client = s3(door)
    made, empty = f"mk{uuid.uuid4().hex[:8]}", f"cb{uuid.uuid4().hex[:8]}"
    assert (
        requests.request("MKCOL", data_url(door, made), headers=bearer("developer"), timeout=30).status_code
        == 201
    )
    client.create_bucket(Bucket=empty)
    put = requests.put(data_url(door, "pl/one"), data=b"1", headers=bearer("developer"), timeout=30)
    assert put.status_code in (200, 201)
    names = [b["Name"] for b in client.list_buckets()["Buckets"]]
    assert {made, empty, "pl"} <= set(names) and names == sorted(names)
    client.head_bucket(Bucket=made)
    assert client.get_bucket_location(Bucket=made)["LocationConstraint"] is None
    # a folder nothing was written in yet is an empty bucket (DVC's s3 remote lists it, never creates it)
    client.head_bucket(Bucket="no-such-folder")
    assert client.list_objects_v2(Bucket="no-such-folder")["KeyCount"] == 0
    assert "no-such-folder" not in names
    assert error_of(client.delete_bucket, Bucket="no-such-folder")["Error"]["Code"] == "NoSuchBucket"
    assert error_of(client.delete_bucket, Bucket="pl")["Error"]["Code"] == "BucketNotEmpty"
    client.delete_bucket(Bucket=empty)
    assert empty not in [b["Name"] for b in client.list_buckets()["Buckets"]]


def test_copy_delete_objects_and_trash(door: RegistryServer) -> None:
    client, bucket = s3(door), f"c{uuid.uuid4().hex[:8]}"
    client.put_object(Bucket=bucket, Key="src", Body=b"original")
    copied = client.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src"})
    assert copied["CopyObjectResult"]["ETag"] == f'"{hashlib.md5(b"original").hexdigest()}"'
    assert client.get_object(Bucket=bucket, Key="dst")["Body"].read() == b"original"
    client.put_object(Bucket=bucket, Key="dst", Body=b"replaced")  # the old version goes to the trash
    trash = requests.get(f"{door.url}/api/v1/projects/101/trash", headers=bearer("maintainer"), timeout=30)
    assert f"{bucket}/dst" in [o["path"] for o in trash.json()["objects"]]
    gone = client.delete_objects(
        Bucket=bucket,
        Delete={"Objects": [{"Key": "src"}, {"Key": "dst"}, {"Key": "nothing"}, {"Key": "a//b"}]},
    )
    assert sorted(d["Key"] for d in gone["Deleted"]) == ["dst", "nothing", "src"]
    assert [(e["Key"], e["Code"]) for e in gone["Errors"]] == [("a//b", "InvalidArgument")]
    quiet = client.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "x"}], "Quiet": True})
    assert "Deleted" not in quiet


def test_content_md5_and_conditions(door: RegistryServer) -> None:
    client, bucket = s3(door), f"m{uuid.uuid4().hex[:8]}"
    bad = error_of(
        client.put_object, Bucket=bucket, Key="k", Body=b"abc", ContentMD5="1B2M2Y8AsgTpgAmY7PhCfg=="
    )
    assert bad["Error"]["Code"] == "BadDigest"
    assert error_of(client.head_object, Bucket=bucket, Key="k")["ResponseMetadata"]["HTTPStatusCode"] == 404
    put = client.put_object(Bucket=bucket, Key="k", Body=b"abc")
    not_modified = error_of(client.get_object, Bucket=bucket, Key="k", IfNoneMatch=put["ETag"])
    assert not_modified["ResponseMetadata"]["HTTPStatusCode"] == 304
    failed = error_of(client.get_object, Bucket=bucket, Key="k", IfMatch='"0123"')
    assert failed["Error"]["Code"] == "PreconditionFailed"
    since = datetime.now(UTC) + timedelta(hours=1)
    assert (
        error_of(client.get_object, Bucket=bucket, Key="k", IfModifiedSince=since)["ResponseMetadata"][
            "HTTPStatusCode"
        ]
        == 304
    )
    wrong_address = error_of(client.put_object, Bucket=bucket, Key=f"files/md5/00/{'0' * 30}", Body=b"x")
    assert wrong_address["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_permissions(door: RegistryServer) -> None:
    bucket = f"p{uuid.uuid4().hex[:8]}"
    s3(door, "developer").put_object(Bucket=bucket, Key="k", Body=b"data")
    reporter = s3(door, "reporter")
    assert reporter.get_object(Bucket=bucket, Key="k")["Body"].read() == b"data"
    assert (
        error_of(reporter.put_object, Bucket=bucket, Key="k2", Body=b"x")["Error"]["Code"] == "AccessDenied"
    )
    developer = s3(door, "developer")
    assert error_of(developer.delete_object, Bucket=bucket, Key="k")["Error"]["Code"] == "AccessDenied"
    outsider = error_of(s3(door, "outsider").get_object, Bucket=bucket, Key="k")
    nowhere = s3(door, "maintainer")
    nowhere.meta.endpoint_url  # noqa: B018 - the same client shape, another project path
    missing = boto3.client(
        "s3",
        endpoint_url=f"{door.url}/ml/no-such-project/-/s3",
        aws_access_key_id=TOKENS["outsider"],
        aws_secret_access_key=TOKENS["outsider"],
        region_name="us-east-1",
    )
    absent = error_of(missing.get_object, Bucket=bucket, Key="k")
    assert outsider["Error"]["Code"] == absent["Error"]["Code"] == "NoSuchBucket"
    assert outsider["Error"]["Message"].replace(PROJECT, "P") == absent["Error"]["Message"].replace(
        "ml/no-such-project", "P"
    )
    wrong = error_of(s3(door, secret="not-the-token").get_object, Bucket=bucket, Key="k")
    assert wrong["Error"]["Code"] == "SignatureDoesNotMatch"
    revoked = error_of(s3(door, "revoked").get_object, Bucket=bucket, Key="k")
    assert revoked["Error"]["Code"] == "InvalidAccessKeyId"


def _signed(
    registry: RegistryServer, method: str, path: str, headers: dict[str, str], *, when: datetime | None = None
) -> requests.Response:
    token = TOKENS["maintainer"]
    url = f"{registry.url}/{PROJECT}/-/s3/{path}"
    request = AWSRequest(
        method=method, url=url, headers={"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD", **headers}
    )
    signer = S3SigV4Auth(Credentials(token, token), "s3", "us-east-1")
    if when is not None:
        request.context["timestamp"] = when.strftime("%Y%m%dT%H%M%SZ")
        request.headers["X-Amz-Date"] = request.context["timestamp"]
        canonical = signer.canonical_request(request)
        signature = signer.signature(signer.string_to_sign(request, canonical), request)
        signed = ";".join(sorted(signer.headers_to_sign(request)))
        scope = signer.scope(request)
        request.headers["Authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={scope}, SignedHeaders={signed}, Signature={signature}"
        )
    else:
        signer.add_auth(request)
    return requests.request(method, url, headers=dict(request.headers), timeout=30)


def test_refusals_in_s3_xml(door: RegistryServer) -> None:
    presigned = s3(door).generate_presigned_url("get_object", Params={"Bucket": "b", "Key": "k"})
    refused = requests.get(presigned, timeout=30)
    assert refused.status_code == 403 and "<Code>AccessDenied</Code>" in refused.text
    assert "/api/v1/projects/" in refused.text and "X-Amz-Credential" not in door.log_text()
    assert TOKENS["maintainer"] not in door.log_text()
    skewed = _signed(door, "GET", "b/k", {}, when=datetime.now(UTC) - timedelta(minutes=20))
    assert skewed.status_code == 403 and "<Code>RequestTimeTooSkewed</Code>" in skewed.text
    for garbage in (
        "AWS4-HMAC-SHA256 nonsense",
        "AWS AKID:sig",
        "Bearer x",
        "AWS4-HMAC-SHA256 Credential=a/b",
    ):
        answer = requests.get(
            f"{door.url}/{PROJECT}/-/s3/b/k", headers={"Authorization": garbage}, timeout=30
        )
        assert 400 <= answer.status_code < 500 and answer.text.startswith("<?xml"), (garbage, answer.text)
    unsupported = _signed(door, "GET", "b?acl", {})
    assert unsupported.status_code == 501 and "<Code>NotImplemented</Code>" in unsupported.text
    head = requests.head(f"{door.url}/{PROJECT}/-/s3/b/k", headers={"Authorization": "junk"}, timeout=30)
    assert 400 <= head.status_code < 500 and head.content == b""


def test_aws_chunked_uploads_with_trailing_checksums(door: RegistryServer) -> None:
    """boto3 over https sends aws-chunked bodies with a trailing CRC32 (here: made with botocore's own
    wrapper, sent over http)."""
    import io

    from botocore.httpchecksum import AwsChunkedWrapper, Crc32Checksum

    bucket, body = f"t{uuid.uuid4().hex[:8]}", b"0123456789abcdef" * 5000
    token = TOKENS["maintainer"]
    url = f"{door.url}/{PROJECT}/-/s3/{bucket}/chunked"

    def send(crc_body: bytes) -> requests.Response:
        wrapped = AwsChunkedWrapper(
            io.BytesIO(crc_body), Crc32Checksum, "x-amz-checksum-crc32", chunk_size=16384
        )
        encoded = wrapped.read()
        if crc_body is not body:  # a body that is not the one whose checksum is declared
            encoded = encoded.replace(crc_body[:16], body[:16], 1)
        headers = {
            "Content-Encoding": "aws-chunked",
            "X-Amz-Content-SHA256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
            "X-Amz-Trailer": "x-amz-checksum-crc32",
            "X-Amz-Decoded-Content-Length": str(len(crc_body)),
            "Content-Length": str(len(encoded)),
        }
        request = AWSRequest(method="PUT", url=url, headers=headers)
        request.context["checksum"] = {"request_algorithm": {"in": "trailer", "name": "x-amz-checksum-crc32"}}
        S3SigV4Auth(Credentials(token, token), "s3", "us-east-1").add_auth(request)
        return requests.put(url, data=encoded, headers=dict(request.headers), timeout=30)

    ok = send(body)
    assert ok.status_code == 200, ok.text
    assert ok.headers["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'
    assert (
        requests.get(data_url(door, f"{bucket}/chunked"), headers=bearer("maintainer"), timeout=30).content
        == body
    )
    tampered = send(b"X" * len(body))
    assert tampered.status_code == 400 and "<Code>BadDigest</Code>" in tampered.text


def test_by_id_endpoint_and_bucket_urls_with_a_trailing_slash(door: RegistryServer) -> None:
    bucket = f"s{uuid.uuid4().hex[:8]}"
    s3(door).put_object(Bucket=bucket, Key="k", Body=b"by id")
    by_id = boto3.client(
        "s3",
        endpoint_url=f"{door.url}/-/projects/101/s3",
        aws_access_key_id=TOKENS["reporter"],
        aws_secret_access_key=TOKENS["reporter"],
        region_name="us-east-1",
    )
    assert by_id.get_object(Bucket=bucket, Key="k")["Body"].read() == b"by id"
    slashed = _signed(door, "GET", f"{bucket}/?list-type=2&prefix=k", {})
    assert slashed.status_code == 200 and "<Key>k</Key>" in slashed.text, slashed.text
    service = _signed(door, "GET", "", {})
    assert service.status_code == 200 and f"<Name>{bucket}</Name>" in service.text


def test_quota_rate_limit_and_gitlab_down_in_s3_xml(tmp_path: Path) -> None:
    """Over quota: 403 QuotaExceeded with the data plane's message; past the rate limit: 503 SlowDown with
    Retry-After; GitLab unreachable: 503 ServiceUnavailable, never AccessDenied."""
    simulator = start_simulator()
    server = start_registry(
        tmp_path / "registry",
        simulator.url,
        REGISTRY_DEFAULT_QUOTA="64KiB",
        REGISTRY_RATE_LIMIT="1",
        REGISTRY_RATE_LIMIT_BURST="3",
    )
    try:
        client = s3(server, "developer")
        client.put_object(Bucket="q", Key="small", Body=b"x" * 1000)
        over = error_of(client.put_object, Bucket="q", Key="big", Body=b"y" * 100_000)
        assert over["Error"]["Code"] == "QuotaExceeded" and over["ResponseMetadata"]["HTTPStatusCode"] == 403
        assert "Quota exceeded for ml/vision" in over["Error"]["Message"]
        codes = []
        for _ in range(12):
            try:
                client.get_object(Bucket="q", Key="small")["Body"].read()
                codes.append("200")
            except ClientError as e:
                codes.append(e.response["Error"]["Code"])
                limited = e.response
        assert "SlowDown" in codes, codes
        assert limited["ResponseMetadata"]["HTTPStatusCode"] == 503
        assert int(limited["ResponseMetadata"]["HTTPHeaders"]["retry-after"]) >= 1
        simulator.stop()
        down = error_of(s3(server, "reporter").get_object, Bucket="q", Key="small")  # not cached yet
        assert down["Error"]["Code"] == "ServiceUnavailable", down
        assert (
            "Retry-After" in down["ResponseMetadata"]["HTTPHeaders"]
            or "retry-after" in down["ResponseMetadata"]["HTTPHeaders"]
        )
    finally:
        server.stop()
        simulator.stop()


def test_a_folder_key_deletes_nothing_and_anonymous_reads_public_projects(door: RegistryServer) -> None:
    """DeleteObject names one key: a folder's name deletes nothing under it (the data plane's DELETE of a
    folder would take it all). Unsigned requests are anonymous: public projects read, others do not."""
    client, bucket = s3(door), f"f{uuid.uuid4().hex[:8]}"
    client.put_object(Bucket=bucket, Key="dir/inside", Body=b"kept")
    client.delete_object(Bucket=bucket, Key="dir")
    assert client.get_object(Bucket=bucket, Key="dir/inside")["Body"].read() == b"kept"
    put = requests.put(
        f"{door.url}/ml/open-data/-/data/pub/file", data=b"open", headers=bearer("maintainer"), timeout=30
    )
    assert put.status_code in (200, 201), put.text
    anonymous = boto3.client(
        "s3",
        endpoint_url=f"{door.url}/ml/open-data/-/s3",
        region_name="us-east-1",
        config=Config(signature_version=UNSIGNED),
    )
    assert anonymous.get_object(Bucket="pub", Key="file")["Body"].read() == b"open"
    assert error_of(anonymous.put_object, Bucket="pub", Key="x", Body=b"x")["Error"]["Code"] == "AccessDenied"
    private = boto3.client(
        "s3",
        endpoint_url=f"{door.url}/{PROJECT}/-/s3",
        region_name="us-east-1",
        config=Config(signature_version=UNSIGNED),
    )
    assert error_of(private.get_object, Bucket=bucket, Key="dir/inside")["Error"]["Code"] == "NoSuchBucket"
