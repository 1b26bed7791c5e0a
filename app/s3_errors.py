"""S3's own errors: the failures of the S3 door (signatures, payload checks, XML) that have no counterpart
in the data plane, each carrying the S3 error code a client switches on."""

from __future__ import annotations

from app.errors import RegistryError


class S3Error(RegistryError):
    """An error answered in S3's XML shape with its own code (`SignatureDoesNotMatch`, `BadDigest`, …);
    the message is safe to show (never a secret)."""

    def __init__(
        self, s3_code: str, message: str, *, status: int = 400, headers: dict[str, str] | None = None
    ):
        super().__init__(message, headers=headers)
        self.s3_code = s3_code
        self.status = status
        self.code = f"s3_{s3_code}"


def signature_mismatch() -> S3Error:
    """The signature the client sent is not the one its secret makes (the secret is not the key id)."""
    return S3Error(
        "SignatureDoesNotMatch",
        "The request signature we calculated does not match the signature you provided: the secret access "
        "key must be the same GitLab token as the access key id",
        status=403,
    )
