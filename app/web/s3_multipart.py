"""The S3 door's multipart uploads (app.door_uploads): CreateMultipartUpload, UploadPart,
UploadPartCopy (a byte range of an object of the same project, read through the registry),
CompleteMultipartUpload, AbortMultipartUpload, ListParts, ListMultipartUploads; called by app.web.s3_door
with the verified request."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from urllib.parse import quote
from xml.etree import ElementTree

from flask import Response, request, stream_with_context

from app.components import Components
from app.door_uploads import Completed
from app.errors import RegistryError
from app.model.locks import IfHeader
from app.model.multipart import MAX_PART_NUMBER
from app.model.projects import ProjectRef
from app.model.upload_sessions import UploadSession
from app.s3_errors import S3Error
from app.web.conditional import write_condition
from app.web.context import services
from app.web.s3_auth import S3Request
from app.web.s3_objects import copy_source, iso_time
from app.web.s3_xml import NS, etag, parse_xml, sub, translate, xml_response

KEEPALIVE_AFTER = 10.0  # seconds a completion may take before its answer starts (S3's whitespace)
KEEPALIVE_EVERY = 10.0  # seconds between those spaces (botocore's read timeout: 60 s)
MAX_LISTED = 1000  # S3's most parts or uploads per listing page
_COMPLETE_BODY_LIMIT = 4 * 1024 * 1024  # 10,000 parts with their ETags and checksums
_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'
_LISTED_UPLOADS = 10_000  # uploads a ListMultipartUploads looks through (its pages are cut from these)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _upload_id() -> str:
    upload_id = request.args.get("uploadId", "")
    if not upload_id:
        raise S3Error("InvalidArgument", "uploadId must not be empty")
    return upload_id


def _number(name: str, default: int, *, largest: int) -> int:
    """A non-negative integer query argument, at most `largest`."""
    text = request.args.get(name)
    if text is None or text == "":
        return default
    if not text.isdigit():
        raise S3Error("InvalidArgument", f"{name} must be a non-negative integer")
    return min(int(text), largest)


def _person(parent: ElementTree.Element, tag: str, session: UploadSession) -> None:
    who = sub(parent, tag)
    name = "anonymous" if session.uploader_id is None else str(session.uploader_id)
    sub(who, "ID", name)
    sub(who, "DisplayName", name)


def create_multipart_upload(ref: ProjectRef, bucket: str, key: str, auth: S3Request) -> Response:
    """Open an upload at bucket/key (permissions and quota checked now, and again at completion)."""
    session = services().door_uploads.create(auth.credential, ref, f"{bucket}/{key}")
    root = ElementTree.Element("InitiateMultipartUploadResult")
    sub(root, "Bucket", bucket)
    sub(root, "Key", key)
    sub(root, "UploadId", session.id)
    return xml_response(root)


def _part_number() -> int:
    text = request.args.get("partNumber", "")
    if not text.isdigit() or not 1 <= int(text) <= MAX_PART_NUMBER:
        raise S3Error("InvalidArgument", f"partNumber must be an integer from 1 to {MAX_PART_NUMBER}")
    return int(text)


def upload_part(ref: ProjectRef, bucket: str, key: str, auth: S3Request) -> Response:
    """Stream one part to the bucket; its ETag is its md5, the checksum the client sent is echoed."""
    part = services().door_uploads.upload_part(
        auth.credential,
        ref,
        f"{bucket}/{key}",
        _upload_id(),
        _part_number(),
        auth.body(),
        size=auth.decoded_length,
    )
    headers = {"ETag": etag(part.md5)}
    headers.update({f"x-amz-checksum-{alg}": value for alg, value in auth.checksums.items()})
    return Response(status=200, headers=headers)


def upload_part_copy(ref: ProjectRef, bucket: str, key: str, auth: S3Request) -> Response:
    """A part copied from an object of this project (`x-amz-copy-source`, optionally the inclusive byte
    range `x-amz-copy-source-range: bytes=first-last`): its bytes read from the bucket through the
    registry (the credential must read the source) and stored as UploadPart stores a part."""
    number, upload_id = _part_number(), _upload_id()
    svc = services()
    source = copy_source(request.headers["x-amz-copy-source"])
    info, read = svc.registry.open(auth.credential, ref, source)
    start, stop = _copy_range(request.headers.get("x-amz-copy-source-range"), info.size)
    part = svc.door_uploads.upload_part(
        auth.credential, ref, f"{bucket}/{key}", upload_id, number, read(start, stop), size=stop - start
    )
    root = ElementTree.Element("CopyPartResult")
    sub(root, "LastModified", iso_time(info))
    sub(root, "ETag", etag(part.md5))
    return xml_response(root)


def _copy_range(header: str | None, size: int) -> tuple[int, int]:
    """[start, stop) of `bytes=first-last` (inclusive, as S3 takes it) within an object of `size` bytes;
    the whole object without the header."""
    if header is None:
        return 0, size
    first, dash, last = header.strip().removeprefix("bytes=").partition("-")
    if not header.strip().startswith("bytes=") or not dash or not first.isdigit() or not last.isdigit():
        raise S3Error("InvalidArgument", "x-amz-copy-source-range must be bytes=first-last")
    if int(first) > int(last) or int(last) >= size:
        raise S3Error("InvalidArgument", f"Range specified is not valid for source object of size: {size}")
    return int(first), int(last) + 1


def complete_multipart_upload(ref: ProjectRef, bucket: str, key: str, auth: S3Request) -> Response:
    """Join the listed parts into the object (checked and committed as a PutObject is); the ETag answered
    is S3's multipart form, `"<md5 of the parts' md5s>-<count>"`. A completion still running after
    KEEPALIVE_AFTER seconds (reading a large object back for its md5) is answered as S3 answers it: 200 at
    once, a space every KEEPALIVE_EVERY seconds so that the client's read timeout never fires, then the
    result, or an <Error> document (which the SDKs turn into an error, and retry)."""
    path = f"{bucket}/{key}"
    upload_id = _upload_id()
    listed = _listed_parts(auth.body_bytes(_COMPLETE_BODY_LIMIT))
    svc = services()
    svc.locks.check(auth.credential, ref, path, IfHeader(), members=False)  # a WebDAV lock holds here too
    condition = write_condition(request)
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="complete")
    running = pool.submit(svc.door_uploads.complete, auth.credential, ref, path, upload_id, listed, condition)
    pool.shutdown(wait=False)
    try:
        done = running.result(timeout=KEEPALIVE_AFTER)  # its errors are answered as any view's
    except TimeoutError:
        answer = _kept_alive(running, svc, bucket, key, request.base_url, request.path)
        return Response(stream_with_context(answer), status=200, content_type="application/xml")
    return xml_response(_completed(svc, done, bucket, key, request.base_url))


def _completed(svc: Components, done: Completed, bucket: str, key: str, location: str) -> ElementTree.Element:
    if done.upload.created:
        svc.metrics.upload_bytes.inc(done.upload.info.size)
    svc.registry.dav.uploaded(done.upload.info, None, created=done.upload.created)
    root = ElementTree.Element("CompleteMultipartUploadResult")
    sub(root, "Location", location)
    sub(root, "Bucket", bucket)
    sub(root, "Key", key)
    sub(root, "ETag", f'"{done.etag}"')
    return root


def _kept_alive(
    running: Future[Completed], svc: Components, bucket: str, key: str, location: str, resource: str
) -> Iterator[bytes]:
    """The declaration, a space while the completion runs, then its result or error as a document."""
    yield _DECLARATION
    while True:
        try:
            root = _completed(svc, running.result(timeout=KEEPALIVE_EVERY), bucket, key, location)
        except TimeoutError:
            yield b" "
            continue
        except RegistryError as error:
            root = ElementTree.Element("Error")
            sub(root, "Code", translate(error)[1])
            sub(root, "Message", error.message)
            sub(root, "Resource", resource)
        root.set("xmlns", NS)
        yield ElementTree.tostring(root)
        return


def _listed_parts(body: bytes) -> list[tuple[int, str]]:
    """(part number, ETag) of each <Part> of a CompleteMultipartUpload document."""
    root = parse_xml(body, "CompleteMultipartUpload")
    if root.tag != "CompleteMultipartUpload":
        raise S3Error("MalformedXML", "The XML must be a CompleteMultipartUpload document")
    listed = []
    for part in root.findall("Part"):
        number, tag = part.findtext("PartNumber", "").strip(), part.findtext("ETag", "")
        if not number.isdigit() or not tag:
            raise S3Error("MalformedXML", "Each Part needs a PartNumber and an ETag")
        listed.append((int(number), tag))
    return listed


def abort_multipart_upload(ref: ProjectRef, bucket: str, key: str, auth: S3Request) -> Response:
    """Drop the upload and its parts."""
    services().door_uploads.abort(auth.credential, ref, f"{bucket}/{key}", _upload_id())
    return Response(status=204)


def list_parts(ref: ProjectRef, bucket: str, key: str, auth: S3Request) -> Response:
    """The parts received, by number, after part-number-marker, max-parts a page."""
    upload_id = _upload_id()
    marker = _number("part-number-marker", 0, largest=MAX_PART_NUMBER)
    most = _number("max-parts", MAX_LISTED, largest=MAX_LISTED)
    session, parts = services().door_uploads.parts(auth.credential, ref, f"{bucket}/{key}", upload_id)
    after = [part for part in parts if part.number > marker]
    page = after[:most]
    root = ElementTree.Element("ListPartsResult")
    sub(root, "Bucket", bucket)
    sub(root, "Key", key)
    sub(root, "UploadId", upload_id)
    _person(root, "Initiator", session)
    _person(root, "Owner", session)
    sub(root, "StorageClass", "STANDARD")
    sub(root, "PartNumberMarker", str(marker))
    sub(root, "NextPartNumberMarker", str(page[-1].number if page else marker))
    sub(root, "MaxParts", str(most))
    sub(root, "IsTruncated", "true" if len(after) > len(page) else "false")
    for part in page:
        item = sub(root, "Part")
        sub(item, "PartNumber", str(part.number))
        sub(item, "LastModified", _iso(part.uploaded_at))
        sub(item, "ETag", etag(part.md5))
        sub(item, "Size", str(part.size))
    return xml_response(root)


def list_multipart_uploads(ref: ProjectRef, bucket: str, key: str, auth: S3Request) -> Response:
    """The bucket's open uploads by key then age: prefix, delimiter (CommonPrefixes), key-marker and
    upload-id-marker, max-uploads, encoding-type=url."""
    args = request.args
    prefix, delimiter = args.get("prefix", ""), args.get("delimiter", "")
    key_marker, id_marker = args.get("key-marker", ""), args.get("upload-id-marker", "")
    most = _number("max-uploads", MAX_LISTED, largest=MAX_LISTED)
    encode = args.get("encoding-type") == "url"
    if encode is False and args.get("encoding-type") not in (None, ""):
        raise S3Error("InvalidArgument", "encoding-type must be url")
    text = (lambda s: quote(s, safe="/")) if encode else (lambda s: s)
    sessions = services().door_uploads.uploads(
        auth.credential, ref, f"{bucket}/{prefix}", limit=_LISTED_UPLOADS
    )
    entries = _after_markers([(s.path[len(bucket) + 1 :], s) for s in sessions], key_marker, id_marker)
    root = ElementTree.Element("ListMultipartUploadsResult")
    sub(root, "Bucket", bucket)
    sub(root, "KeyMarker", text(key_marker))
    sub(root, "UploadIdMarker", id_marker)
    page, prefixes, truncated = _page(entries, prefix, delimiter, most)
    last_key, last_id = (page[-1][0], page[-1][1].id) if page else (key_marker, id_marker)
    if prefixes and (not page or prefixes[-1] > last_key):
        last_key, last_id = prefixes[-1], ""
    sub(root, "NextKeyMarker", text(last_key))
    sub(root, "NextUploadIdMarker", last_id)
    if delimiter:
        sub(root, "Delimiter", text(delimiter))
    sub(root, "Prefix", text(prefix))
    sub(root, "MaxUploads", str(most))
    sub(root, "IsTruncated", "true" if truncated else "false")
    if encode:
        sub(root, "EncodingType", "url")
    for name, session in page:
        item = sub(root, "Upload")
        sub(item, "Key", text(name))
        sub(item, "UploadId", session.id)
        _person(item, "Initiator", session)
        _person(item, "Owner", session)
        sub(item, "StorageClass", "STANDARD")
        sub(item, "Initiated", _iso(session.created_at))
    for common in prefixes:
        sub(sub(root, "CommonPrefixes"), "Prefix", text(common))
    return xml_response(root)


Entry = tuple[str, UploadSession]


def _after_markers(entries: list[Entry], key_marker: str, id_marker: str) -> list[Entry]:
    """The uploads after the markers: keys after key-marker, and with upload-id-marker, the uploads of
    key-marker itself that come after that upload."""
    if not key_marker:
        return entries
    kept: list[Entry] = []
    passed = not id_marker
    for name, session in entries:
        if name > key_marker:
            kept.append((name, session))
        elif name == key_marker and id_marker:
            if passed:
                kept.append((name, session))
            passed = passed or session.id == id_marker
    return kept


def _page(
    entries: list[Entry], prefix: str, delimiter: str, most: int
) -> tuple[list[Entry], list[str], bool]:
    """(uploads, common prefixes, truncated): at most `most` of the two together, in key order."""
    page: list[Entry] = []
    prefixes: list[str] = []
    for name, session in entries:
        cut = name.find(delimiter, len(prefix)) if delimiter else -1
        if cut >= 0:
            common = name[: cut + len(delimiter)]
            if prefixes and prefixes[-1] == common:
                continue
            if len(page) + len(prefixes) == most:
                return page, prefixes, True
            prefixes.append(common)
        else:
            if len(page) + len(prefixes) == most:
                return page, prefixes, True
            page.append((name, session))
    return page, prefixes, False
