"""Byte-for-byte snapshots of a folder tree, to prove a refused command wrote, moved and deleted nothing."""

from __future__ import annotations

import os
from pathlib import Path

TINY = """\
name: tiny
fabric: {hosts: 2}
workload: {rule: data_sizes, data_sizes: [1KiB], trials: 2}
output: {plots: false}
"""


def snapshot(root: Path) -> dict[str, tuple]:
    """Every path under root (itself included): its kind, permission bits and, for files, its bytes."""
    tree = {}
    for folder, dirs, files in os.walk(root):
        for name in ["", *dirs, *files]:
            path = Path(folder) / name
            info = path.lstat()
            content = path.read_bytes() if path.is_file() and not path.is_symlink() else None
            tree[str(path.relative_to(root))] = (path.is_dir(), info.st_mode & 0o7777, content)
    return tree


def workspace(root: Path) -> Path:
    """A user's folder with a tiny scenario in it and decoys around: notes.txt, docs/readme.md and
    results/baselines/tiny.json. Returns the scenario's path."""
    (root / "docs").mkdir()
    (root / "docs" / "readme.md").write_text("the user's own notes\n")
    (root / "notes.txt").write_text("not fabricsim's\n")
    (root / "results" / "baselines").mkdir(parents=True)
    (root / "results" / "baselines" / "tiny.json").write_text("{}\n")
    path = root / "tiny.yaml"
    path.write_text(TINY)
    return path
