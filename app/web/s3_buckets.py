"""The S3 door's bucket operations: a bucket is a top-level folder of the project's data (a collection
MKCOL made, or the first segment of some object's path). ListBuckets, HeadBucket, GetBucketLocation,
CreateBucket, DeleteBucket, and ListObjects / ListObjectsV2 (app.web.s3_listing pages them)."""

from __future__ import annotations

from contextlib import suppress
from datetime import UTC, datetime
from urllib.parse import quote
from xml.etree import ElementTree

from flask import Response, request

from app.errors import NotFound, ObjectNotFound
from app.model.identity import Action
from app.model.projects import ProjectRef
from app.s3_errors import S3Error
from app.web.context import services
from app.web.s3_auth import S3Request
from app.web.s3_listing import Page, list_page
from app.web.s3_objects import iso_time, key_of
from app.web.s3_xml import etag, sub, xml_response

MAX_KEYS = 1000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def list_buckets(ref: ProjectRef, bucket: str, key: str, auth: S3Request) -> Response:
    """The project's top-level folders and collections."""
    dav = services().registry.dav
    grant = dav.grant(auth.credential, ref, Action.READ)
    found = dav.find(auth.credential, ref, "", members=True, properties=False)
    folders = sorted((e for e in found.members if e.info is None), key=lambda e: e.path)
    root = ElementTree.Element("ListAllMyBucketsResult")
    owner = sub(root, "Owner")
    sub(owner, "ID", str(grant.project.id))
    sub(owner, "DisplayName", grant.project.path)
    listed = sub(root, "Buckets")
    for entry in folders:
        item = sub(listed, "Bucket")
        sub(item, "Name", entry.path)
        sub(item, "CreationDate", _iso(entry.modified or _EPOCH))
    return xml_response(root)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _require_bucket(auth: S3Request, ref: ProjectRef, bucket: str, *, made: bool = False) -> None:
    """NoSuchBucket where an object sits at the top of the data. Any other name is a bucket of a project
    the caller may read, empty until something is written in it (a PUT needs no parent folder, and DVC's
    s3 remote never creates its bucket: it lists it first); `made`: only a folder that exists."""
    try:
        found = services().registry.dav.find(auth.credential, ref, bucket, members=False, properties=False)
    except ObjectNotFound:
        if made:
            raise S3Error("NoSuchBucket", f"No folder {bucket} at the top of the data", status=404) from None
        return
    if found.entry.info is not None:
        raise S3Error(
            "NoSuchBucket", f"{bucket} is an object at the top of the data, not a folder", status=404
        )


def head_bucket(ref: ProjectRef, bucket: str, key: str, auth: S3Request) -> Response:
    _require_bucket(auth, ref, bucket)
    return Response(status=200, headers={"x-amz-bucket-region": "us-east-1"})


def get_bucket_location(ref: ProjectRef, bucket: str, key: str, auth: S3Request) -> Response:
    """An empty LocationConstraint (us-east-1): any region signs for the door."""
    _require_bucket(auth, ref, bucket)
    return xml_response(ElementTree.Element("LocationConstraint"))


def create_bucket(ref: ProjectRef, bucket: str, key: str, auth: S3Request) -> Response:
    """A top-level collection, as MKCOL makes; 200 also when it exists (as MKCOL answers 201 then)."""
    services().registry.dav.make_collection(auth.credential, ref, bucket)
    return Response(status=200, headers={"Location": f"/{bucket}"})


def delete_bucket(ref: ProjectRef, bucket: str, key: str, auth: S3Request) -> Response:
    """204 for an empty bucket; 409 BucketNotEmpty while an object is in it."""
    _require_bucket(auth, ref, bucket, made=True)
    page = list_page(auth.credential, ref, bucket, prefix="", delimiter="", after=None, max_keys=1)
    if page.entries:
        raise S3Error(
            "BucketNotEmpty", f"The bucket {bucket} is not empty: delete its objects first", status=409
        )
    with suppress(NotFound):  # a folder of objects that went meanwhile: gone either way
        services().registry.delete(auth.credential, ref, bucket)
    return Response(status=204)


def list_objects(ref: ProjectRef, bucket: str, key: str, auth: S3Request) -> Response:
    """ListObjectsV2 (`list-type=2`) or ListObjects: prefix, delimiter, max-keys, continuation-token or
    marker, start-after, encoding-type=url."""
    args = request.args
    v2 = args.get("list-type") == "2"
    prefix, delimiter = args.get("prefix", ""), args.get("delimiter", "")
    encode = args.get("encoding-type") == "url"
    if args.get("encoding-type") not in (None, "url"):
        raise S3Error("InvalidArgument", "encoding-type must be url")
    max_keys = _max_keys(args.get("max-keys"))
    token = args.get("continuation-token") if v2 else None
    start = args.get("start-after", "") if v2 else args.get("marker", "")
    _require_bucket(auth, ref, bucket)
    after = Page.resume(token) if token else (start or None)
    page = list_page(
        auth.credential, ref, bucket, prefix=prefix, delimiter=delimiter, after=after, max_keys=max_keys
    )
    text = (lambda s: quote(s, safe="/")) if encode else (lambda s: s)
    root = ElementTree.Element("ListBucketResult")
    sub(root, "Name", bucket)
    sub(root, "Prefix", text(prefix))
    if v2:
        sub(root, "KeyCount", str(len(page.entries)))
        if token:
            sub(root, "ContinuationToken", token)
        if start:
            sub(root, "StartAfter", text(start))
    else:
        sub(root, "Marker", text(start))
    sub(root, "MaxKeys", str(max_keys))
    if delimiter:
        sub(root, "Delimiter", text(delimiter))
    if encode:
        sub(root, "EncodingType", "url")
    sub(root, "IsTruncated", "true" if page.truncated else "false")
    if page.truncated:
        if v2:
            sub(root, "NextContinuationToken", page.token())
        elif delimiter:
            sub(root, "NextMarker", text(page.last))
    for info in page.objects:
        item = sub(root, "Contents")
        sub(item, "Key", text(key_of(bucket, info.path)))
        sub(item, "LastModified", iso_time(info))
        sub(item, "ETag", etag(info.md5))
        sub(item, "Size", str(info.size))
        sub(item, "StorageClass", "STANDARD")
    for common in page.prefixes:
        sub(sub(root, "CommonPrefixes"), "Prefix", text(common))
    return xml_response(root)


def _max_keys(value: str | None) -> int:
    if value is None:
        return MAX_KEYS
    if not value.isascii() or not value.isdigit() or len(value) > 9:
        raise S3Error("InvalidArgument", "max-keys must be a non-negative integer")
    return min(int(value), MAX_KEYS)
