"""Result folders: written whole or not at all, and only ever over a folder fabricsim wrote itself.

A result folder is assembled under a hidden temporary name beside its destination and moved into place
in one rename once complete, so an interrupted or failed run leaves nothing behind. Each folder holds a
marker file, ``.fabricsim``, naming the tool, its version and the files it wrote. A target that is
anything else (a file, a folder without the marker or with files the marker does not name, the current
folder or one above it, a folder holding an input file, a path under a file or in a folder that cannot
be written) is refused with one ScenarioError line before any work is done, and nothing is written.
A stage left by a killed run (SIGKILL leaves no time to clean up) is removed by the next run into the
same folder.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator

from fabricsim.config import ScenarioError
from fabricsim.version import __version__

MARKER = ".fabricsim"


def check_target(out_dir: str | Path, where: str, inputs: Iterable[str | Path] = ()) -> None:
    """Raise ScenarioError (``where``: the key or flag that named the folder) unless fabricsim may
    write its result folder at ``out_dir``: a new folder, or one it wrote itself."""
    problem = _target_problem(Path(out_dir), [Path(path) for path in inputs])
    if problem:
        raise ScenarioError(f"{where}: expected a new folder or a result folder fabricsim wrote, "
                            f"got {problem}; nothing was written")


def _target_problem(out_dir: Path, inputs: list[Path]) -> str | None:
    if out_dir.is_symlink():
        return f"{out_dir}, a symbolic link"
    target = out_dir.resolve()
    cwd = Path.cwd().resolve()
    if target == cwd or target in cwd.parents:
        return f"{out_dir}, the current folder or one holding it"
    for path in inputs:
        if target in path.resolve().parents:
            return f"{out_dir}, the folder holding {path}"
    if target.exists():
        if not target.is_dir():
            return f"{out_dir}, an existing file"
        written = written_files(target)
        if written is None:
            return f"{out_dir}, an existing folder fabricsim did not write (no {MARKER} marker)"
        others = sorted(entry.name for entry in target.iterdir() if entry.name not in written)
        if others:
            return f"{out_dir}, a result folder holding files fabricsim did not write ({', '.join(others[:3])})"
    return unwritable(out_dir)


def unwritable(path: str | Path) -> str | None:
    """Why a file or folder could not be made at path (its nearest existing folder is a file, or cannot
    be written), or None."""
    existing = next(parent for parent in Path(path).resolve().parents if parent.exists())
    if not existing.is_dir():
        return f"{path}, a path under the file {existing}"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"{path}, in {existing} which cannot be written"
    return None


def written_files(folder: Path) -> set[str] | None:
    """The names a result folder's marker says fabricsim wrote there (the marker included), or None
    when the folder has no valid marker."""
    try:
        marker = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    files = marker.get("files") if isinstance(marker, dict) and marker.get("written_by") == "fabricsim" else None
    if not isinstance(files, list) or not all(isinstance(name, str) for name in files):
        return None
    return set(files) | {MARKER}


@contextmanager
def staged_folder(out_dir: str | Path, where: str | None = None) -> Iterator[Path]:
    """A temporary folder to write the results into; on success it is marked and renamed to out_dir
    (replacing an earlier result folder there), on any failure or interrupt it is removed, with the
    parent folders made for it."""
    where = where or str(out_dir)
    check_target(out_dir, where)
    out_dir = Path(out_dir).resolve()
    made = [parent for parent in (out_dir.parent, *out_dir.parent.parents) if not parent.exists()]
    stage = None
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_stages(out_dir)
        stage = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.stage-{os.getpid()}-", dir=out_dir.parent))
        stage.chmod(0o777 & ~_umask())  # mkdtemp's folder is private; results follow the user's umask
        yield stage
        _write_marker(stage)
        check_target(out_dir, where)
        _move_into_place(stage, out_dir)
    except BaseException:
        if stage is not None and stage.exists():
            shutil.rmtree(stage)
        for parent in made:  # innermost first; only the empty ones made here
            try:
                parent.rmdir()
            except OSError:
                break
        raise


def _remove_stale_stages(out_dir: Path) -> None:
    """Remove the stages of out_dir left by runs that were killed (SIGKILL leaves no time to clean up):
    those whose process is gone."""
    pattern = re.compile(rf"^\.{re.escape(out_dir.name)}\.stage-([0-9]+)-")
    for entry in out_dir.parent.iterdir():
        match = pattern.match(entry.name)
        if match and entry.is_dir() and not _alive(int(match.group(1))):
            shutil.rmtree(entry, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        pass
    return True


def _write_marker(stage: Path) -> None:
    files = sorted(entry.name for entry in stage.iterdir()) + [MARKER]
    marker = {"written_by": "fabricsim", "version": __version__, "files": files}
    (stage / MARKER).write_text(json.dumps(marker, indent=1) + "\n", encoding="utf-8")


def _move_into_place(stage: Path, out_dir: Path) -> None:
    """Rename stage to out_dir; an earlier result folder there is moved aside first and removed after,
    or moved back if the swap is interrupted."""
    if not out_dir.exists():
        os.replace(stage, out_dir)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.stage-{os.getpid()}-old-", dir=out_dir.parent))
    try:
        os.replace(out_dir, old / out_dir.name)
        try:
            os.replace(stage, out_dir)
        except BaseException:
            os.replace(old / out_dir.name, out_dir)
            raise
    finally:
        shutil.rmtree(old)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
