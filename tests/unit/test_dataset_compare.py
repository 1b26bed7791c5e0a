"""Comparing two refs of a repository's datasets: the manifest diff (added, removed, changed, in path
order, fast on 100,000 files), the `from...to` argument, and the comparison of whole datasets (added,
removed, a single-file dataset as one file, a manifest not pushed, an unknown ref)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from app.dataset_compare import Comparisons, FileChange, diff_manifests, parse_range
from app.datasets import Dataset
from app.errors import BadRequest, NotFound
from app.model.projects import ProjectRef

A, B, C, D = ("a" * 32, "b" * 32, "c" * 32, "d" * 32)


def test_a_diff_names_each_kind_in_path_order() -> None:
    before = [("cats/1.jpg", A), ("cats/2.jpg", B), ("dogs/1.jpg", C)]
    after = [("cats/1.jpg", A), ("cats/2.jpg", D), ("birds/1.jpg", C)]
    diff = diff_manifests(before, after)
    assert (diff.added, diff.removed, diff.changed, diff.unchanged) == (1, 1, 1, 1)
    assert diff.rows == [
        FileChange("birds/1.jpg", "added", None, C),
        FileChange("cats/2.jpg", "changed", B, D),
        FileChange("dogs/1.jpg", "removed", C, None),
    ]


def test_identical_and_empty_manifests() -> None:
    same = [("x", A), ("y", B)]
    assert diff_manifests(same, list(reversed(same))).rows == []
    assert diff_manifests([], []).rows == []
    assert [r.kind for r in diff_manifests([], same).rows] == ["added", "added"]
    assert [r.kind for r in diff_manifests(same, []).rows] == ["removed", "removed"]


def test_100000_files_compare_exactly() -> None:
    """At scale, every kind of difference is counted. How fast is scripts/bench/compare_manifests.py's to
    measure (a wall-clock limit here failed under CI's load at 0.52 s for 0.5); a compare that went
    quadratic would not finish within the suite's per-test timeout."""
    before = [(f"images/{i:06d}.jpg", f"{i:032x}") for i in range(100_000)]
    after = [(p, m if i % 10 else f"{i + 1:032x}") for i, (p, m) in enumerate(before[1_000:])]
    after += [(f"new/{i:06d}.jpg", f"{i:032x}") for i in range(1_000)]
    diff = diff_manifests(before, after)
    assert (diff.added, diff.removed, diff.changed) == (1_000, 1_000, 9_900)


@pytest.mark.parametrize(
    ("text", "refs"),
    [("v1...main", ("v1", "main")), ("v1..main", ("v1", "main")), (f"{A[:40]}...v2", (A[:40], "v2"))],
)
def test_a_range_names_two_refs(text: str, refs: tuple[str, str]) -> None:
    assert parse_range(text) == refs


@pytest.mark.parametrize("text", ["main", "...main", "v1...", "v1 x...main", "a\nb...c", "x" * 300 + "...a"])
def test_a_bad_range_is_a_bad_request(text: str) -> None:
    with pytest.raises(BadRequest):
        parse_range(text)


def _dataset(name: str, md5: str, where: str | None = "here", size: int | None = 5) -> Dataset:
    path = f"dvc/files/md5/{md5[:2]}/{md5[2:]}" if where else None
    return Dataset(name, f"{name}.dvc", md5, size, None, path, 0)


@dataclass
class _Page:
    ref: str
    datasets: list[Dataset]


@dataclass
class _Info:
    size: int


@dataclass
class _Fakes:
    """The gateway (commit), Datasets (at_ref, manifest) and index (get) a comparison reads."""

    refs: dict[str, list[Dataset]]
    manifests: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)
    manifest_reads: list[str] = field(default_factory=list)

    def commit(self, credential: object, project_id: int, ref: str) -> object | None:
        return object() if ref in self.refs else None

    def at_ref(self, credential: object, ref: ProjectRef, git_ref: str) -> _Page:
        return _Page(git_ref, self.refs[git_ref])

    def manifest(self, credential: object, ref: ProjectRef, path: str) -> list[tuple[str, str]]:
        self.manifest_reads.append(path)
        return self.manifests[path]

    def get(self, project_id: int, path: str) -> _Info | None:
        return _Info(self.sizes[path]) if path in self.sizes else None


def _comparisons(fakes: _Fakes) -> Comparisons:
    return Comparisons(gateway=fakes, datasets=fakes, index=fakes)  # type: ignore[arg-type]


def test_datasets_added_removed_changed_and_unchanged() -> None:
    old_dir, new_dir = A + ".dir", B + ".dir"
    fakes = _Fakes(
        refs={
            "v1": [_dataset("data", old_dir), _dataset("model.pkl", C, size=10), _dataset("gone", D)],
            "v2": [_dataset("data", new_dir), _dataset("model.pkl", D, size=12), _dataset("fresh", A)],
        },
        manifests={
            f"dvc/files/md5/aa/{old_dir[2:]}": [("x.csv", C), ("y.csv", D)],
            f"dvc/files/md5/bb/{new_dir[2:]}": [("x.csv", A), ("z.csv", D)],
        },
        sizes={f"dvc/files/md5/cc/{C[2:]}": 100, f"dvc/files/md5/aa/{A[2:]}": 120},
    )
    comparison = _comparisons(fakes).compare(None, ProjectRef(id=1), 1, "v1", "v2")
    by_name = {c.name: c for c in comparison.changes}
    assert {n: c.status for n, c in by_name.items()} == {
        "data": "changed",
        "model.pkl": "changed",
        "gone": "removed",
        "fresh": "added",
    }
    data = by_name["data"]
    assert data.diff is not None
    assert [(r.relpath, r.kind) for r in data.diff.rows] == [
        ("x.csv", "changed"),
        ("y.csv", "removed"),
        ("z.csv", "added"),
    ]
    rows = _comparisons(fakes).rows(1, data, offset=0, limit=2)
    assert [(r.size_before, r.size_after) for r in rows] == [(100, 120), (None, None)]
    model = by_name["model.pkl"]  # a single file: one changed file, sizes from the .dvc file
    assert model.diff is not None and [(r.relpath, r.kind) for r in model.diff.rows] == [
        ("model.pkl", "changed")
    ]
    assert [(r.size_before, r.size_after) for r in _comparisons(fakes).rows(1, model, offset=0, limit=9)] == [
        (10, 12)
    ]
    assert by_name["fresh"].diff is not None and by_name["fresh"].diff.added == 1


def test_an_unchanged_dataset_reads_no_manifest_and_a_missing_one_says_so() -> None:
    same, new_dir = A + ".dir", B + ".dir"
    fakes = _Fakes(
        refs={
            "v1": [_dataset("same", same), _dataset("data", C + ".dir")],
            "v2": [_dataset("same", same), _dataset("data", new_dir, where=None)],
        },
        manifests={f"dvc/files/md5/cc/{C[2:]}.dir": [("x", A)]},
    )
    comparison = _comparisons(fakes).compare(None, ProjectRef(id=1), 1, "v1", "v2")
    assert fakes.manifest_reads == []  # the unknown side stops the read of the other
    data = comparison.find("data")
    assert data is not None and data.status == "unknown" and data.diff is None
    assert data.problem is not None and "not pushed" in data.problem
    assert [c.name for c in comparison.changed] == ["data"]


def test_an_unknown_ref_is_not_found() -> None:
    fakes = _Fakes(refs={"v1": []})
    with pytest.raises(NotFound, match="nope"):
        _comparisons(fakes).compare(None, ProjectRef(id=1), 1, "v1", "nope")
