"""Reading a DVC repository: which `.dvc/config` remote points at this project's data and under which
prefix, the outputs `.dvc` files and `dvc.lock` name, and where DVC keeps a content address."""

from __future__ import annotations

import pytest

from app.datasets import object_path, outputs, remote_prefix
from app.model.projects import Project, Visibility

VISION = Project(101, "ml/vision", Visibility.PRIVATE)
MD5 = "0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize(
    ("config", "found"),
    [
        (
            "[core]\n    remote = registry\n['remote \"registry\"']\n    url = https://data.example.com/ml/vision/-/data/dvc\n",
            ("registry", "dvc"),
        ),
        ("['remote \"dav\"']\n    url = webdavs://data.example.com/ML/Vision/-/data\n", ("dav", "")),
        (
            "['remote \"byid\"']\n    url = https://data.example.com/-/projects/101/data/a/b/\n",
            ("byid", "a/b"),
        ),
        ("['remote \"other\"']\n    url = https://data.example.com/ml/other/-/data/dvc\n", (None, None)),
        ("['remote \"s3\"']\n    url = s3://bucket/path\n", (None, None)),  # AWS itself
        (
            "['remote \"door\"']\n    url = s3://dvc/store\n    endpointurl = https://r/ml/vision/-/s3\n",
            ("door", "dvc/store"),
        ),
        (
            "['remote \"door\"']\n    url = s3://dvc\n    endpointurl = https://r/-/projects/101/s3/\n",
            ("door", "dvc"),
        ),
        (
            "['remote \"door\"']\n    url = s3://dvc\n    endpointurl = https://r/ml/other/-/s3\n",
            (None, None),
        ),
        ("not an ini file [", (None, None)),
    ],
)
def test_remote_prefix(config: str, found: tuple[str | None, str | None]) -> None:
    assert remote_prefix(config.encode(), VISION) == found


def test_the_default_remote_wins() -> None:
    config = (
        "[core]\n    remote = b\n"
        "['remote \"a\"']\n    url = https://r/ml/vision/-/data/one\n"
        "['remote \"b\"']\n    url = https://r/ml/vision/-/data/two\n"
    )
    assert remote_prefix(config.encode(), VISION) == ("b", "two")


def test_outputs_of_dvc_files_and_locks() -> None:
    dvc_file = f"outs:\n- md5: {MD5}.dir\n  size: 10\n  nfiles: 2\n  hash: md5\n  path: images\n".encode()
    assert outputs("data/images.dvc", dvc_file) == [
        (
            "data/images",
            "data/images.dvc",
            {"md5": f"{MD5}.dir", "size": 10, "nfiles": 2, "hash": "md5", "path": "images"},
        )
    ]
    lock = (
        "schema: '2.0'\nstages:\n  train:\n    cmd: x\n    outs:\n"
        f"    - path: ../model.pkl\n      md5: {MD5}\n"
    ).encode()
    assert [(n, s) for n, s, _ in outputs("sub/dvc.lock", lock)] == [("model.pkl", "sub/dvc.lock: train")]
    for broken in (
        b"stages: {train: {outs: 7}}",
        b"[",
        b"- a list",
        b"outs: 3",
        b"outs:\n- md5: nothex\n  path: x\n",
        b"\x00\xff",
    ):
        assert outputs("x.dvc", broken) == []


def test_where_dvc_keeps_a_content_address() -> None:
    assert object_path("dvc", MD5, dvc3=True) == f"dvc/files/md5/01/{MD5[2:]}"
    assert object_path("", MD5 + ".dir", dvc3=False) == f"01/{MD5[2:]}.dir"


def test_a_manifest_tree_has_each_folder_and_searches_the_whole_dataset() -> None:
    from app.dataset_tree import ManifestTree

    tree = ManifestTree.of(
        [
            ("imgs/deep/er/Needle.txt", "a" * 32),
            ("top.csv", "b" * 32),
            ("imgs/f1", "c" * 32),
            ("imgs/f0", "c" * 32),
        ]
    )
    assert tree.subfolders("") == ["imgs"] and tree.subfolders("imgs/") == ["deep"]
    assert tree.subfolders("imgs/deep") == ["er"] and tree.subfolders("nowhere") == []
    assert tree.files_in("imgs", 0, 10) == ([("imgs/f0", "c" * 32), ("imgs/f1", "c" * 32)], 2)
    assert tree.files_in("imgs", 1, 10) == ([("imgs/f1", "c" * 32)], 2)
    assert tree.files_in("", 0, 10) == ([("top.csv", "b" * 32)], 1)
    assert tree.search("NEEDLE", 0, 10) == ([("imgs/deep/er/Needle.txt", "a" * 32)], 1)
    assert tree.search("imgs/", 1, 1) == ([("imgs/f0", "c" * 32)], 3)
    assert tree.by_md5["c" * 32] == "imgs/f0"  # the first path listing it


@pytest.mark.parametrize("raw", [b"[", b"{}", b'[{"relpath": 3, "md5": "x"}, 7]', b"[" * 100_000])
def test_an_unreadable_manifest_is_an_empty_tree(raw: bytes) -> None:
    from app.dataset_tree import ManifestTree

    assert ManifestTree.parse(raw).entries == []
