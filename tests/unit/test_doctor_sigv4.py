"""doctor's own SigV4 signer (app/client/sigv4.py: the client imports no AWS SDK) signs exactly as botocore's
S3 signer does, query and odd characters included, so the door's check (botocore's signer) accepts it."""

from __future__ import annotations

from datetime import UTC, datetime
from unittest import mock

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from app.client.sigv4 import signed_headers

NOW = datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("url", "params", "region"),
    [
        ("http://127.0.0.1:8080/ml/vision/-/s3/dvc", {"list-type": "2", "max-keys": "1"}, "us-east-1"),
        ("https://data.example.com/ml/vision/-/s3/", {}, "eu-west-1"),
        (
            "https://Data.Example.com/registry/a.b/c_d/-/s3/team",
            {"list-type": "2", "prefix": "files/md5 x/é+=&", "max-keys": "1"},
            "us-east-1",
        ),
    ],
)
def test_signs_as_botocore_does(url: str, params: dict[str, str], region: str) -> None:
    mine = signed_headers("GET", url, params, "glpat-key", "glpat-key", region=region, now=NOW)
    theirs = AWSRequest(
        method="GET", url=url, params=params, headers={"X-Amz-Content-SHA256": mine["X-Amz-Content-SHA256"]}
    )
    with mock.patch("botocore.auth.get_current_datetime", return_value=NOW.replace(tzinfo=None)):
        S3SigV4Auth(Credentials("glpat-key", "glpat-key"), "s3", region).add_auth(theirs)
    assert mine["Authorization"] == theirs.headers["Authorization"]
    assert mine["X-Amz-Date"] == theirs.headers["X-Amz-Date"] == "20260501T120000Z"


def test_another_secret_is_another_signature() -> None:
    url = "https://data.example.com/ml/vision/-/s3/dvc"
    one = signed_headers("GET", url, {}, "glpat-key", "glpat-key", now=NOW)["Authorization"]
    other = signed_headers("GET", url, {}, "glpat-key", "glpat-other", now=NOW)["Authorization"]
    assert one.split("Signature=")[1] != other.split("Signature=")[1]
