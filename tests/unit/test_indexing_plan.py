"""The indexing plan's pure decisions (indexing/plan.py): tables, no git, no I/O."""

from __future__ import annotations

import pytest
from shield_orchestrator.indexing.plan import (
    LFS_POINTER_PREFIX,
    Changes,
    PlanPolicy,
    Rename,
    Skipped,
    SkipReason,
    TreeEntry,
    build_plan,
    cap_files,
    content_probe,
    diff_manifests,
    glob_regex,
    parse_check_attr,
    parse_ls_tree,
    skip_by_attributes,
    skip_by_content,
    skip_by_entry,
)

SHA_A = "a" * 40
SHA_B = "b" * 40
SHA_C = "c" * 40


def blob(path: str, size: int = 10, sha: str = SHA_A, mode: str = "100644") -> TreeEntry:
    return TreeEntry(path=path, mode=mode, kind="blob", sha=sha, size=size)


def test_skip_reasons_are_the_strings_operators_see() -> None:
    assert [r.value for r in SkipReason] == [
        "symlink",
        "submodule",
        "path_not_utf8",
        "secret",
        "excluded",
        "not_included",
        "generated",
        "vendored",
        "binary",
        "over_max_file_bytes",
        "empty",
        "lfs_pointer",
        "over_max_files",
    ]
    assert f"{SkipReason.LFS_POINTER}" == "lfs_pointer"


def test_parse_ls_tree_reads_modes_sizes_and_odd_paths() -> None:
    raw = (
        f"100644 blob {SHA_A}      12\tsrc/a b.py\0".encode()
        + f"100755 blob {SHA_B}       3\trun.sh\0".encode()
        + f"120000 blob {SHA_C}       9\tlink\0".encode()
        + f"160000 commit {SHA_A}       -\tvendor/lib\0".encode()
        + f"100644 blob {SHA_B}       1\tt\u00e9st\ttab\nnl.txt\0".encode()
        + f"100644 blob {SHA_B}       1\t".encode()
        + b"bad\xffname\0"
    )
    entries = parse_ls_tree(raw)
    assert entries[0] == TreeEntry("src/a b.py", "100644", "blob", SHA_A, 12)
    assert entries[1].mode == "100755"
    assert entries[2].mode == "120000"
    assert entries[3] == TreeEntry("vendor/lib", "160000", "commit", SHA_A, None)
    assert entries[4].path == "t\u00e9st\ttab\nnl.txt"
    assert entries[5].path_ok is False
    assert parse_ls_tree(b"") == []


def test_parse_ls_tree_refuses_garbage() -> None:
    with pytest.raises(ValueError, match="unexpected git ls-tree record"):
        parse_ls_tree(b"not a tree line\0")


def test_parse_check_attr_keeps_specified_values_only() -> None:
    raw = (
        b"gen/a.py\0linguist-generated\0set\0gen/a.py\0binary\0unspecified\0"
        b"b.dat\0diff\0unset\0x.txt\0linguist-vendored\0false\0"
    )
    assert parse_check_attr(raw) == {
        "gen/a.py": {"linguist-generated": "set"},
        "b.dat": {"diff": "unset"},
        "x.txt": {"linguist-vendored": "false"},
    }
    with pytest.raises(ValueError, match="check-attr"):
        parse_check_attr(b"a\0b\0")


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        ("*.pem", "server.pem", True),
        ("*.pem", "deep/dir/server.pem", True),
        ("*.pem", "server.pem.txt", False),
        ("node_modules/", "web/node_modules/react/index.js", True),
        ("node_modules", "node_modules/x.js", True),
        ("docs/*.md", "docs/a.md", True),
        ("docs/*.md", "docs/sub/a.md", False),
        ("docs/*.md", "other/docs/a.md", False),
        ("docs/**/*.md", "docs/sub/deeper/a.md", True),
        ("docs/**/*.md", "docs/a.md", True),
        ("/setup.py", "setup.py", True),
        ("/setup.py", "pkg/setup.py", False),
        ("src/**", "src/a/b.c", True),
        ("?.py", "a.py", True),
        ("?.py", "ab.py", False),
        ("a+b(c).py", "a+b(c).py", True),
    ],
)
def test_globs_are_gitignore_like(pattern: str, path: str, matches: bool) -> None:
    assert (glob_regex(pattern).fullmatch(path) is not None) is matches


POLICY = PlanPolicy(max_file_bytes=1000, include=(), exclude=("dist/", "*.min.js"))


@pytest.mark.parametrize(
    ("entry", "policy", "reason"),
    [
        (blob("src/a.py"), POLICY, None),
        (blob("link", mode="120000"), POLICY, SkipReason.SYMLINK),
        (TreeEntry("lib", "160000", "commit", SHA_A, None), POLICY, SkipReason.SUBMODULE),
        (
            TreeEntry("b\ufffdd", "100644", "blob", SHA_A, 3, False),
            POLICY,
            SkipReason.PATH_NOT_UTF8,
        ),
        (blob(".env"), POLICY, SkipReason.SECRET),
        (blob("deploy/.env.production"), POLICY, SkipReason.SECRET),
        (blob("config/prod.env"), POLICY, SkipReason.SECRET),
        (blob("certs/server.pem"), POLICY, SkipReason.SECRET),
        (blob("tls/server.key"), POLICY, SkipReason.SECRET),
        (blob("home/.ssh/id_rsa"), POLICY, SkipReason.SECRET),
        (blob("home/.ssh/id_ed25519.pub"), POLICY, SkipReason.SECRET),
        (blob("dist/bundle.js"), POLICY, SkipReason.EXCLUDED),
        (blob("web/app.min.js"), POLICY, SkipReason.EXCLUDED),
        (blob("src/big.py", size=1001), POLICY, SkipReason.OVER_MAX_FILE_BYTES),
        (blob("src/limit.py", size=1000), POLICY, None),
        (blob("src/empty.py", size=0), POLICY, SkipReason.EMPTY),
        (blob("README.md"), PlanPolicy(include=("src/",)), SkipReason.NOT_INCLUDED),
        (blob("src/a.py"), PlanPolicy(include=("src/",)), None),
        # An include glob never lets a secret in; a secret excluded too is still a secret.
        (blob("src/.env"), PlanPolicy(include=("src/**",)), SkipReason.SECRET),
        (blob("dist/a.pem"), POLICY, SkipReason.SECRET),
        # A symlink is a symlink before anything else (never followed, never read).
        (blob(".env", mode="120000"), POLICY, SkipReason.SYMLINK),
    ],
)
def test_skip_by_entry(entry: TreeEntry, policy: PlanPolicy, reason: SkipReason | None) -> None:
    assert skip_by_entry(entry, policy) == reason


def test_policy_refuses_a_non_positive_cap() -> None:
    with pytest.raises(ValueError, match="max_file_bytes has value 0"):
        PlanPolicy(max_file_bytes=0)
    with pytest.raises(ValueError, match="max_files has value 0"):
        PlanPolicy(max_files=0)


def test_the_file_cap_keeps_the_first_paths_in_path_order() -> None:
    """Over max_files: the first indexable paths in path order (skipped files do not count),
    the others skipped as over_max_files, and an indexed file beyond the cap is removed."""
    entries = [blob(p, sha=s) for p, s in (("c.py", SHA_C), ("a.py", SHA_A), ("b.py", SHA_B))]
    entries.append(blob(".env", sha="f" * 40))
    plan = build_plan("c", entries, {"c.py": SHA_C}, PlanPolicy(max_files=2),
                      attributes={}, heads={})  # fmt: skip
    assert plan.manifest == {"a.py": SHA_A, "b.py": SHA_B}
    assert plan.changes == Changes(added=("a.py", "b.py"), removed=("c.py",))
    assert plan.skipped_by_reason() == {SkipReason.OVER_MAX_FILES: 1, SkipReason.SECRET: 1}
    assert Skipped("c.py", SkipReason.OVER_MAX_FILES, SHA_C) in plan.skipped
    assert cap_files({"b": SHA_B, "a": SHA_A}, 5) == ({"a": SHA_A, "b": SHA_B}, [])


@pytest.mark.parametrize(
    ("attributes", "reason"),
    [
        ({}, None),
        ({"linguist-generated": "set"}, SkipReason.GENERATED),
        ({"linguist-generated": "true"}, SkipReason.GENERATED),
        ({"linguist-generated": "unset"}, None),
        ({"linguist-generated": "false"}, None),
        ({"linguist-vendored": "set"}, SkipReason.VENDORED),
        ({"linguist-vendored": "false"}, None),
        ({"binary": "set", "diff": "unset", "text": "unset"}, SkipReason.BINARY),
        ({"diff": "unset"}, SkipReason.BINARY),
        ({"text": "unset"}, SkipReason.BINARY),
        ({"text": "set"}, None),
        ({"linguist-generated": "set", "binary": "set"}, SkipReason.GENERATED),
    ],
)
def test_skip_by_attributes(attributes: dict[str, str], reason: SkipReason | None) -> None:
    assert skip_by_attributes(attributes) == reason


LFS = LFS_POINTER_PREFIX + b"\noid sha256:" + b"0" * 64 + b"\nsize 123456\n"


@pytest.mark.parametrize(
    ("head", "size", "reason"),
    [
        (b"print('hi')\n", 12, None),
        (LFS, len(LFS), SkipReason.LFS_POINTER),
        (LFS, 5000, None),  # a big file that merely starts like a pointer is text
        (b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", 16, SkipReason.BINARY),
        (b"x" * 8191 + b"\0", 8192, SkipReason.BINARY),
        (b"x" * 8192 + b"\0", 8193, None),  # git looks at the first 8 KiB only
        ("caf\u00e9 \u2603\n".encode(), 10, None),
    ],
)
def test_skip_by_content(head: bytes, size: int, reason: SkipReason | None) -> None:
    assert skip_by_content(head, size) == reason
    # what a plan keeps of a head (44 bytes at most) decides the same
    assert len(content_probe(head)) <= len(LFS_POINTER_PREFIX) + 1
    assert skip_by_content(content_probe(head), size) == reason


@pytest.mark.parametrize(
    ("previous", "current", "expected"),
    [
        ({}, {}, Changes()),
        ({}, {"a.py": SHA_A}, Changes(added=("a.py",))),
        ({"a.py": SHA_A}, {}, Changes(removed=("a.py",))),
        ({"a.py": SHA_A}, {"a.py": SHA_B}, Changes(modified=("a.py",))),
        ({"a.py": SHA_A}, {"a.py": SHA_A}, Changes(unchanged=1)),
        ({"a.py": SHA_A}, {"b.py": SHA_A}, Changes(renamed=(Rename("a.py", "b.py", SHA_A),))),
        # A copy: the old path is still there, so the new one is an addition.
        ({"a.py": SHA_A}, {"a.py": SHA_A, "b.py": SHA_A}, Changes(added=("b.py",), unchanged=1)),
        # One of two identical files goes away: a removal, not a rename.
        ({"a.py": SHA_A, "b.py": SHA_A}, {"b.py": SHA_A}, Changes(removed=("a.py",), unchanged=1)),
        # Two identical files both move: paired in sorted order.
        (
            {"a/x.py": SHA_A, "b/x.py": SHA_A},
            {"c/x.py": SHA_A, "d/x.py": SHA_A},
            Changes(renamed=(Rename("a/x.py", "c/x.py", SHA_A), Rename("b/x.py", "d/x.py", SHA_A))),
        ),
        # One identical file leaves, two arrive: one rename, one addition.
        (
            {"old.py": SHA_A},
            {"n1.py": SHA_A, "n2.py": SHA_A},
            Changes(added=("n2.py",), renamed=(Rename("old.py", "n1.py", SHA_A),)),
        ),
        # Two files swap contents: both modified, no rename.
        (
            {"a.py": SHA_A, "b.py": SHA_B},
            {"a.py": SHA_B, "b.py": SHA_A},
            Changes(modified=("a.py", "b.py")),
        ),
        # Renamed and edited: a removal and an addition (the blob differs).
        ({"a.py": SHA_A}, {"b.py": SHA_B}, Changes(added=("b.py",), removed=("a.py",))),
        # The same basename in two packages are two files.
        (
            {"a/__init__.py": SHA_A},
            {"a/__init__.py": SHA_A, "b/__init__.py": SHA_C},
            Changes(added=("b/__init__.py",), unchanged=1),
        ),
    ],
)
def test_diff_manifests(
    previous: dict[str, str], current: dict[str, str], expected: Changes
) -> None:
    assert diff_manifests(previous, current) == expected


def test_changes_is_empty() -> None:
    assert Changes(unchanged=3).is_empty
    assert not Changes(removed=("a",)).is_empty


def test_build_plan_combines_every_rule() -> None:
    entries = [
        blob("src/keep.py", sha=SHA_A),
        blob("src/new.py", sha=SHA_B),
        blob("gen/out.py", sha=SHA_C),
        blob("img/logo.png", sha="d" * 40),
        blob("big/model.bin", sha="e" * 40),
        blob(".env", sha="f" * 40),
        TreeEntry("third_party/lib", "160000", "commit", "1" * 40, None),
    ]
    attributes = {"gen/out.py": {"linguist-generated": "set"}}
    heads = {SHA_B: b"x = 1\n", "d" * 40: b"\x89PNG\0", "e" * 40: LFS}
    previous = {"src/keep.py": SHA_A, "gen/out.py": SHA_C, "src/gone.py": "9" * 40}
    plan = build_plan("c0ffee", entries, previous, POLICY, attributes=attributes, heads=heads)
    assert plan.commit == "c0ffee"
    # keep.py has no head: its blob was indexed before (same sha), so it is text.
    assert plan.manifest == {"src/keep.py": SHA_A, "src/new.py": SHA_B}
    assert plan.changes == Changes(
        added=("src/new.py",), removed=("gen/out.py", "src/gone.py"), unchanged=1
    )
    assert plan.skipped == (
        Skipped(".env", SkipReason.SECRET, "f" * 40),
        Skipped("big/model.bin", SkipReason.LFS_POINTER, "e" * 40),
        Skipped("gen/out.py", SkipReason.GENERATED, SHA_C),
        Skipped("img/logo.png", SkipReason.BINARY, "d" * 40),
        Skipped("third_party/lib", SkipReason.SUBMODULE, "1" * 40),
    )
    assert plan.skipped_by_reason() == {
        SkipReason.SECRET: 1,
        SkipReason.LFS_POINTER: 1,
        SkipReason.GENERATED: 1,
        SkipReason.BINARY: 1,
        SkipReason.SUBMODULE: 1,
    }


def test_build_plan_removes_a_file_that_became_skipped() -> None:
    """A file indexed before that now falls under a rule leaves the graph (it is removed)."""
    plan = build_plan(
        "c",
        [blob("src/a.py", size=5000, sha=SHA_B)],
        {"src/a.py": SHA_A},
        POLICY,
        attributes={},
        heads={},
    )
    assert plan.manifest == {}
    assert plan.changes == Changes(removed=("src/a.py",))
    assert plan.skipped == (Skipped("src/a.py", SkipReason.OVER_MAX_FILE_BYTES, SHA_B),)
