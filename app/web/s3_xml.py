"""S3's XML on the wire: documents out (with S3's namespace), request bodies in (no DTD, namespaces
dropped), and the one place the registry's errors become S3 error documents with S3's codes."""

from __future__ import annotations

from xml.etree import ElementTree

from flask import Response, g, request
from werkzeug.exceptions import HTTPException

from app import errors
from app.s3_errors import S3Error
from app.web.dav_xml import parse_xml as parse_safely
from app.web.errors import reason_phrase

NS = "http://s3.amazonaws.com/doc/2006-03-01/"
_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'

__all__ = ["S3Error", "error_response", "etag", "parse_xml", "sub", "translate", "xml_response"]


def sub(parent: ElementTree.Element, tag: str, text: str | None = None) -> ElementTree.Element:
    """A child element with optional text."""
    child = ElementTree.SubElement(parent, tag)
    if text is not None:
        child.text = text
    return child


def etag(md5: str) -> str:
    """The ETag S3 gives an object stored in one part: its md5, quoted."""
    return f'"{md5}"'


def xml_response(
    root: ElementTree.Element, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """The document with S3's namespace on its root."""
    root.set("xmlns", NS)
    body = _DECLARATION + ElementTree.tostring(root, encoding="unicode")
    return Response(body, status=status, headers=headers, content_type="application/xml")


def parse_xml(body: bytes, what: str) -> ElementTree.Element:
    """The body's root with namespaces dropped from tags; 400 MalformedXML when it is not safe,
    well-formed XML."""
    try:
        root = parse_safely(body, what)
    except errors.BadRequest as e:
        raise S3Error("MalformedXML", e.message) from None
    for element in root.iter():
        element.tag = element.tag.rpartition("}")[2]
    return root


# (error class, S3 status, S3 code) in the order they are tried: subclasses first.
_CODES: list[tuple[type[errors.RegistryError], int, str]] = [
    (errors.ObjectNotFound, 404, "NoSuchKey"),
    (errors.ProjectNotFound, 404, "NoSuchBucket"),
    (errors.ProjectDeleted, 404, "NoSuchBucket"),
    (errors.NotFound, 404, "NoSuchKey"),
    (errors.InvalidCredential, 403, "InvalidAccessKeyId"),
    (errors.AuthenticationRequired, 403, "AccessDenied"),
    (errors.PermissionDenied, 403, "AccessDenied"),
    # 403: not retried by any SDK (a 5xx or SlowDown would be), and not EntityTooLarge, which says the
    # object is over S3's size limit; the message says how much is used and how to free it.
    (errors.QuotaExceeded, 403, "QuotaExceeded"),
    (errors.FileTooLarge, 400, "EntityTooLarge"),
    (errors.BodyTooLarge, 400, "MaxMessageLengthExceeded"),
    (errors.RateLimited, 503, "SlowDown"),
    (errors.GitLabUnavailable, 503, "ServiceUnavailable"),
    (errors.DatabaseUnavailable, 503, "ServiceUnavailable"),
    (errors.StorageUnavailable, 503, "ServiceUnavailable"),
    (errors.PreconditionFailed, 412, "PreconditionFailed"),
    (errors.MethodNotAllowed, 405, "MethodNotAllowed"),
    (errors.Conflict, 409, "OperationAborted"),
    (errors.ChecksumMismatch, 400, "BadDigest"),
    (errors.UploadIncomplete, 400, "IncompleteBody"),
    (errors.InvalidPath, 400, "InvalidArgument"),
    (errors.BadRequest, 400, "InvalidRequest"),
]


def translate(error: errors.RegistryError, *, bucket_level: bool = False) -> tuple[int, str]:
    """The S3 status and code of a registry error (a missing path asked about as a bucket: NoSuchBucket)."""
    if isinstance(error, S3Error):
        return error.status, error.s3_code
    for kind, status, code in _CODES:
        if isinstance(error, kind):
            if code == "NoSuchKey" and bucket_level:
                return status, "NoSuchBucket"
            return status, code
    return (500, "InternalError") if error.status >= 500 else (error.status, "InvalidRequest")


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    """`<Error>` with the code, the message, the resource and the request id; no body for HEAD. The
    message is the status line's reason too, as on the data plane."""
    g.error_code = code
    root = ElementTree.Element("Error")
    if request.method != "HEAD":
        sub(root, "Code", code)
        sub(root, "Message", message)
        sub(root, "Resource", request.path)
        sub(root, "RequestId", g.get("request_id", ""))
    body = "" if request.method == "HEAD" else _DECLARATION + ElementTree.tostring(root, encoding="unicode")
    response = Response(body, headers=headers, content_type="application/xml")
    response.status = f"{status} {reason_phrase(message)}"
    response.headers["x-amz-request-id"] = g.get("request_id", "")
    return response


def registry_error_response(error: errors.RegistryError, *, bucket_level: bool) -> Response:
    """A registry error as S3 answers it."""
    status, code = translate(error, bucket_level=bucket_level)
    return error_response(status, code, error.message, error.headers)


def http_error_response(error: HTTPException) -> Response:
    """werkzeug's own errors (a malformed request) in S3's shape."""
    status = error.code or 400
    code = "InternalError" if status >= 500 else "MethodNotAllowed" if status == 405 else "InvalidRequest"
    return error_response(status, code, error.description or error.name)
