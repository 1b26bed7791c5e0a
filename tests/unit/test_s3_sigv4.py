"""SigV4 verification of the S3 door (app.sigv4): requests botocore signs verify, AWS's own documented
chunked-upload example verifies, and every way a signature can be wrong is refused with S3's code."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from app import sigv4
from app.s3_errors import S3Error

TOKEN = "glpat-door-token-0001"
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SCOPE = "AWS4-HMAC-SHA256 Credential=a/20260301/us-east-1/s3/aws4_request"
ZEROS = "0" * 64


def signed(
    url: str, *, method: str = "GET", secret: str = TOKEN, headers: dict[str, str] | None = None
) -> AWSRequest:
    """A request signed by botocore as boto3 signs it (the clock at NOW)."""
    request = AWSRequest(method=method, url=url, headers=dict(headers or {}))
    signer = S3SigV4Auth(Credentials(TOKEN, secret), "s3", "eu-west-1")
    request.context["timestamp"] = NOW.strftime("%Y%m%dT%H%M%SZ")
    signer._modify_request_before_signing(request)
    request.headers["X-Amz-Date"] = request.context["timestamp"]
    canonical = signer.canonical_request(request)
    signature = signer.signature(signer.string_to_sign(request, canonical), request)
    names = ";".join(sorted(signer.headers_to_sign(request)))
    request.headers["Authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={signer.scope(request)}, SignedHeaders={names}, Signature={signature}"
    )
    request.headers["Host"] = url.split("/")[2]
    return request


def check(
    request: AWSRequest, *, path: str, query: list[tuple[str, str]] = (), now: datetime = NOW
) -> sigv4.SignedRequest:  # type: ignore[assignment]
    auth = sigv4.parse_authorization(request.headers["Authorization"])
    return sigv4.verify(
        auth,
        method=request.method,
        origin="http://registry.test",
        path=path,
        query=list(query),
        headers=list(request.headers.items()),
        now=now,
    )


def code_of(call: object, *args: object, **kwargs: object) -> str:
    with pytest.raises(S3Error) as raised:
        call(*args, **kwargs)  # type: ignore[operator]
    return raised.value.s3_code


def test_a_request_botocore_signs_verifies() -> None:
    request = signed("http://registry.test/ml/vision/-/s3/dvc/files/md5/ab/cd%20e%C3%A9~f")
    found = check(request, path="/ml/vision/-/s3/dvc/files/md5/ab/cd eé~f")
    assert found.signature == sigv4.parse_authorization(request.headers["Authorization"]).signature


def test_query_parameters_are_signed_decoded() -> None:
    request = signed("http://registry.test/p/-/s3/dvc?list-type=2&prefix=a%2Fb%20c%2Bd&encoding-type=url")
    query = [("list-type", "2"), ("prefix", "a/b c+d"), ("encoding-type", "url")]
    check(request, path="/p/-/s3/dvc", query=query)
    assert code_of(check, request, path="/p/-/s3/dvc", query=[*query[:1], ("prefix", "a/b")]) == (
        "SignatureDoesNotMatch"
    )


def test_a_header_botocore_leaves_unsigned_is_verified_when_the_client_signed_it() -> None:
    """Other SDKs sign User-Agent; the door signs exactly the headers the client lists."""
    request = signed("http://registry.test/p/-/s3/b/k", headers={"User-Agent": "rclone/v1.66"})
    auth = sigv4.parse_authorization(request.headers["Authorization"])
    names = ";".join(sorted([*auth.signed_headers, "user-agent"]))
    auth = sigv4.Authorization(
        auth.access_key, auth.date, auth.region, auth.service, tuple(names.split(";")), "0" * 64
    )
    expected = sigv4.expected_signature(
        auth,
        method="GET",
        origin="http://registry.test",
        path="/p/-/s3/b/k",
        query=[],
        headers=list(request.headers.items()),
        timestamp=request.headers["X-Amz-Date"],
    )
    header = request.headers["Authorization"].split(", SignedHeaders=")[0]
    request.headers.replace_header(
        "Authorization", f"{header}, SignedHeaders={names}, Signature={expected.signature}"
    )
    check(request, path="/p/-/s3/b/k")
    request.headers.replace_header("User-Agent", "something else")
    assert code_of(check, request, path="/p/-/s3/b/k") == "SignatureDoesNotMatch"


def test_a_secret_that_is_not_the_key_id_does_not_match() -> None:
    request = signed("http://registry.test/p/-/s3/b/k", secret="another secret")
    assert code_of(check, request, path="/p/-/s3/b/k") == "SignatureDoesNotMatch"


def test_a_changed_path_method_or_signed_header_does_not_match() -> None:
    request = signed("http://registry.test/p/-/s3/b/k", method="PUT", headers={"Content-MD5": "abc"})
    assert code_of(check, request, path="/p/-/s3/b/other") == "SignatureDoesNotMatch"
    request.method = "DELETE"
    assert code_of(check, request, path="/p/-/s3/b/k") == "SignatureDoesNotMatch"
    request.method = "PUT"
    check(request, path="/p/-/s3/b/k")
    request.headers.replace_header("Content-MD5", "abd")
    assert code_of(check, request, path="/p/-/s3/b/k") == "SignatureDoesNotMatch"


def test_the_clock_must_be_within_15_minutes() -> None:
    request = signed("http://registry.test/p/-/s3/b/k")
    check(request, path="/p/-/s3/b/k", now=NOW + timedelta(minutes=14))
    assert (
        code_of(check, request, path="/p/-/s3/b/k", now=NOW + timedelta(minutes=16)) == "RequestTimeTooSkewed"
    )
    assert code_of(check, request, path="/p/-/s3/b/k", now=NOW - timedelta(hours=1)) == "RequestTimeTooSkewed"
    assert code_of(sigv4.request_time, "yesterday", NOW) == "AccessDenied"
    assert code_of(sigv4.request_time, None, NOW) == "AccessDenied"


@pytest.mark.parametrize(
    ("header", "code"),
    [
        ("AWS AKIDEXAMPLE:signature", "InvalidRequest"),
        ("Bearer glpat-x", "InvalidRequest"),
        ("AWS4-HMAC-SHA256", "AuthorizationHeaderMalformed"),
        ("AWS4-HMAC-SHA256 Credential=a/20260301/us-east-1/s3/aws4_request", "AuthorizationHeaderMalformed"),
        (
            "AWS4-HMAC-SHA256 Credential=a/20260301/us-east-1/sqs/aws4_request, SignedHeaders=host, "
            f"Signature={'0' * 64}",
            "AuthorizationHeaderMalformed",
        ),
        (
            f"{SCOPE}, SignedHeaders=date, Signature={ZEROS}",
            "AuthorizationHeaderMalformed",
        ),
        (
            f"{SCOPE}, SignedHeaders=host, Signature=xyz",
            "AuthorizationHeaderMalformed",
        ),
        (
            f"AWS4-HMAC-SHA256 Credential=a/2026/us-east-1/s3/aws4_request, SignedHeaders=host, "
            f"Signature={ZEROS}",
            "AuthorizationHeaderMalformed",
        ),
    ],
)
def test_malformed_headers_are_400s_with_s3_codes(header: str, code: str) -> None:
    with pytest.raises(S3Error) as raised:
        sigv4.parse_authorization(header)
    assert raised.value.s3_code == code and raised.value.status == 400


def test_aws_documented_chunked_upload_signatures() -> None:
    """AWS's example "Transferring Payload in Multiple Chunks" (S3 API reference, sigv4-streaming): the seed
    signature and each chunk's, computed through botocore's signer."""
    secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    names = (
        "content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;"
        "x-amz-decoded-content-length;x-amz-storage-class"
    )
    auth = sigv4.Authorization(secret, "20130524", "us-east-1", "s3", tuple(names.split(";")), "0" * 64)
    headers = [
        ("Host", "s3.amazonaws.com"),
        ("x-amz-date", "20130524T000000Z"),
        ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
        ("Content-Encoding", "aws-chunked"),
        ("x-amz-decoded-content-length", "66560"),
        ("Content-Length", "66824"),
        ("x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"),
    ]
    found = sigv4.expected_signature(
        auth,
        method="PUT",
        origin="https://s3.amazonaws.com",
        path="/examplebucket/chunkObject.txt",
        query=[],
        headers=headers,
        timestamp="20130524T000000Z",
    )
    assert found.signature == "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
    first = found.chunk_signature(found.signature, hashlib.sha256(b"a" * 65536).hexdigest())
    assert first == "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648"
    second = found.chunk_signature(first, hashlib.sha256(b"a" * 1024).hexdigest())
    assert second == "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497"
    last = found.chunk_signature(second, hashlib.sha256(b"").hexdigest())
    assert last == "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9"


def test_the_token_is_in_no_repr() -> None:
    request = signed("http://registry.test/p/-/s3/b/k")
    auth = sigv4.parse_authorization(request.headers["Authorization"])
    found = check(request, path="/p/-/s3/b/k")
    assert TOKEN not in repr(auth) and TOKEN not in repr(found)


def test_logs_mask_the_credential_part_of_authorization_and_presigned_urls() -> None:
    """The access key id is the token: no log line may carry it (app.logs masks every line)."""
    from app.logs import masked_path

    request = signed("http://registry.test/p/-/s3/b/k")
    assert TOKEN not in masked_path(f"Authorization: {request.headers['Authorization']}")
    presigned = (
        f"/p/-/s3/b/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={TOKEN}%2F20260301&X-Amz-Date=1"
    )
    assert TOKEN not in masked_path(presigned)
