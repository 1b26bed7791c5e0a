"""The S3 door's object operations: HeadObject, GetObject (streamed through the registry: S3 clients follow
no redirect to another host), PutObject, CopyObject, DeleteObject and DeleteObjects, over the same use
cases as the data plane (permissions, quotas, trash, content-address checks)."""

from __future__ import annotations

from urllib.parse import unquote
from xml.etree import ElementTree

from flask import Response, request

from app.errors import ObjectNotFound, RegistryError
from app.model.identity import Action
from app.model.locks import IfHeader
from app.model.objects import ObjectInfo
from app.model.paths import content_type
from app.model.projects import ProjectRef
from app.s3_errors import S3Error
from app.web.conditional import http_date, preconditions, range_holds, write_condition
from app.web.context import services
from app.web.s3_auth import S3Request
from app.web.s3_xml import etag, parse_xml, sub, translate, xml_response
from app.web.streaming import ranged_response

MAX_DELETE_KEYS = 1000  # S3's own limit per DeleteObjects request
_DELETE_BODY_LIMIT = 2 * 1024 * 1024


def data_path(bucket: str, key: str) -> str:
    """The data-plane path an S3 object is: the bucket is its first segment."""
    return f"{bucket}/{key}"


def key_of(bucket: str, path: str) -> str:
    return path[len(bucket) + 1 :]


def _headers(info: ObjectInfo) -> list[tuple[str, str]]:
    return [("ETag", etag(info.md5)), ("Last-Modified", http_date(info.created_at))]


def head_object(ref: ProjectRef, bucket: str, key: str, auth: S3Request) -> Response:
    """200 with the object's size, ETag (md5), Last-Modified; 304/412 for conditional requests."""
    info = services().registry.stat(auth.credential, ref, data_path(bucket, key))
    headers = _headers(info)
    not_modified = preconditions(request, info.md5, info.created_at, headers)
    if not_modified is not None:
        return not_modified
    headers += [("Content-Length", str(info.size)), ("Accept-Ranges", "bytes")]
    return Response(status=200, headers=headers, content_type=content_type(info.path))


def get_object(ref: ProjectRef, bucket: str, key: str, auth: S3Request) -> Response:
    """The object's bytes (a Range: 206), streamed from the bucket through the app."""
    info, reader = services().registry.open(auth.credential, ref, data_path(bucket, key))
    headers = _headers(info)
    not_modified = preconditions(request, info.md5, info.created_at, headers)
    if not_modified is not None:
        return not_modified
    ranged = range_holds(request, info.md5, info.created_at)
    return ranged_response(
        request, info.size, reader, dict(headers), content_type=content_type(info.path), ranged=ranged
    )


def _check_lock(auth: S3Request, ref: ProjectRef, path: str, *, members: bool = False) -> None:
    """A WebDAV lock on the path holds against the S3 door too (423)."""
    services().locks.check(auth.credential, ref, path, IfHeader(), members=members)


def put_object(ref: ProjectRef, bucket: str, key: str, auth: S3Request) -> Response:
    """Store the body (a different object there is replaced, its version kept in the trash); the ETag
    is its md5; the checksum the client sent is echoed once checked."""
    path = data_path(bucket, key)
    _check_lock(auth, ref, path)
    svc = services()
    result = svc.uploads.upload(
        auth.credential,
        ref,
        path,
        auth.body(),
        condition=write_condition(request),
        declared_size=auth.decoded_length,
    )
    if result.created:
        svc.metrics.upload_bytes.inc(result.info.size)
    svc.registry.dav.uploaded(result.info, None, created=result.created)
    headers = {"ETag": etag(result.info.md5)}
    headers.update({f"x-amz-checksum-{alg}": value for alg, value in auth.checksums.items()})
    return Response(status=200, headers=headers)


def copy_object(ref: ProjectRef, bucket: str, key: str, auth: S3Request) -> Response:
    """A server-side copy within the project (`x-amz-copy-source: <bucket>/<key>`), as WebDAV's COPY."""
    source = copy_source(request.headers["x-amz-copy-source"])
    dest = data_path(bucket, key)
    svc = services()
    if source != dest:
        _check_lock(auth, ref, dest)
        svc.moves.copy(auth.credential, ref, source, (ref, dest), overwrite=True, infinite=False)
    info = svc.registry.stat(auth.credential, ref, dest)
    root = ElementTree.Element("CopyObjectResult")
    sub(root, "LastModified", iso_time(info))
    sub(root, "ETag", etag(info.md5))
    return xml_response(root)


def copy_source(header: str) -> str:
    """The data path an x-amz-copy-source names (`[/]bucket/key[?versionId=…]`, URL-encoded)."""
    value, _, version = header.partition("?")
    if version and version not in ("versionId=null", "versionId="):
        raise S3Error("NotImplemented", "Object versions are not supported (only versionId=null)", status=501)
    path = unquote(value).lstrip("/")
    if "/" not in path:
        raise S3Error("InvalidArgument", "x-amz-copy-source must be <bucket>/<key> in this project")
    return path


def iso_time(info: ObjectInfo) -> str:
    """S3's timestamps: ISO 8601 in UTC with milliseconds."""
    return info.created_at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{info.created_at.microsecond // 1000:03d}Z"


def _delete_one(auth: S3Request, ref: ProjectRef, path: str) -> None:
    """Delete the object at path (never what is under it: S3 deletes one key); nothing there is fine."""
    svc = services()
    try:
        svc.registry.stat(auth.credential, ref, path)
    except ObjectNotFound:
        return
    _check_lock(auth, ref, path)
    svc.registry.delete(auth.credential, ref, path)


def delete_object(ref: ProjectRef, bucket: str, key: str, auth: S3Request) -> Response:
    """204, also for a key that is not there (as S3); Maintainer, as the data plane's DELETE."""
    services().registry.dav.grant(auth.credential, ref, Action.DELETE)
    _delete_one(auth, ref, data_path(bucket, key))
    return Response(status=204)


def delete_objects(ref: ProjectRef, bucket: str, key: str, auth: S3Request) -> Response:
    """POST ?delete: up to 1,000 keys, each deleted or reported in an <Error>; Quiet lists errors only."""
    services().registry.dav.grant(auth.credential, ref, Action.DELETE)
    root = parse_xml(auth.body_bytes(_DELETE_BODY_LIMIT), "The Delete request body")
    if root.tag != "Delete":
        raise S3Error("MalformedXML", "The body must be a <Delete> document")
    keys = [obj.findtext("Key") or "" for obj in root.findall("Object")]
    if not keys or len(keys) > MAX_DELETE_KEYS:
        raise S3Error("MalformedXML", f"A Delete names 1 to {MAX_DELETE_KEYS} objects")
    quiet = (root.findtext("Quiet") or "").strip().lower() == "true"
    result = ElementTree.Element("DeleteResult")
    for name in keys:
        try:
            _delete_one(auth, ref, data_path(bucket, name))
        except RegistryError as error:  # reported per key, as S3 does; the others still go
            _, code = translate(error)
            failed = sub(result, "Error")
            sub(failed, "Key", name)
            sub(failed, "Code", code)
            sub(failed, "Message", error.message)
            continue
        if not quiet:
            sub(sub(result, "Deleted"), "Key", name)
    return xml_response(result)
