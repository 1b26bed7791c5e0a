"""Object path rules (DESIGN.md section 2) and content-addressed md5 extraction."""

import pytest

from app.errors import InvalidPath
from app.model.paths import ObjectPath, object_key

MD5 = "ab23456789abcdef0123456789abcdef"


@pytest.mark.parametrize(
    ("path", "rule"),
    [
        ("", "empty"),
        ("/abs", "start with '/'"),
        ("a//b", "empty segment"),
        ("a/", "empty segment"),
        ("a/../b", "'..'"),
        ("..", "'..'"),
        ("./a", "'.'"),
        ("a\\b", "backslash"),
        ("a\x00b", "control"),
        ("a\nb", "control"),
        ("a\x7fb", "control"),
        ("x" * 1025, "1024 bytes"),
        ("é" * 513, "1024 bytes"),
        ("bad\udcffutf8", "UTF-8"),
    ],
)
def test_bad_paths_name_the_rule(path: str, rule: str) -> None:
    with pytest.raises(InvalidPath, match="Invalid path") as info:
        ObjectPath(path)
    assert rule in info.value.message


@pytest.mark.parametrize(
    "path",
    ["a", "x" * 1024, "runs/ab/cdef/0123", "data/ünïcode file.csv", "a/.hidden/..x/b", "é" * 512],
)
def test_good_paths(path: str) -> None:
    assert ObjectPath(path).value == path


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (f"files/md5/{MD5[:2]}/{MD5[2:]}", MD5),
        (f"dvc/files/md5/{MD5[:2]}/{MD5[2:]}.dir", MD5),
        (f"{MD5[:2]}/{MD5[2:]}", MD5),
        (f"legacy/{MD5[:2]}/{MD5[2:]}.dir", MD5),
        (f"files/md5/{MD5[:2]}/{MD5[2:]}x", None),
        (f"files/md5/{MD5[:3]}/{MD5[3:]}", None),
        ("files/md5", None),
        (f"files/md5/{MD5[:2].upper()}/{MD5[2:]}", None),
        ("data/train.csv", None),
    ],
)
def test_content_addressed_paths(path: str, expected: str | None) -> None:
    assert ObjectPath(path).expected_md5 == expected


def test_object_key_uses_the_numeric_project_id() -> None:
    assert object_key(42, ObjectPath("dvc/a")) == "projects/42/dvc/a"
