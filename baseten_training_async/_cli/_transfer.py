"""``jobs checkpoint-files --download DIR``: fetch presigned URLs into a folder, resumably.

A file is written to ``NAME.part`` and renamed when complete; an existing
``.part`` is continued with an HTTP ``Range`` request, and a complete file
of the expected size is skipped, so running the command again finishes an
interrupted download. Presigned URLs are plain HTTPS GETs, so this uses the
standard library in worker threads (the SDK's session is for the API).
"""

from __future__ import annotations

import asyncio
import threading
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import Final

from .. import AsyncPager, CheckpointFile
from ._exit import UsageError
from ._output import Output, human_bytes, one_line

__all__ = ["download_checkpoint_files", "target_path"]

_CHUNK: Final = 1 << 20
_TIMEOUT: Final = 60.0


class DownloadError(Exception):
    """One file could not be downloaded."""


def target_path(root: Path, file: CheckpointFile, *, per_node: bool) -> Path:
    """Where a checkpoint file goes under ``root``; never outside it.

    Args:
        root: The download folder (resolved).
        file: The file as the API listed it.
        per_node: Put files under ``node-RANK/`` (multi-node jobs).

    Returns:
        The destination path.

    Raises:
        UsageError: The server-provided name is absolute or climbs out of ``root``.
    """
    name = PurePosixPath(file.relative_file_name.replace("\\", "/"))
    if name.is_absolute() or ".." in name.parts or not name.parts:
        raise UsageError(f"refusing unsafe checkpoint file name {one_line(str(name))!r}")
    base = root / f"node-{file.node_rank}" if per_node else root
    dest = base.joinpath(*name.parts).resolve()
    if root not in dest.parents:
        raise UsageError(f"refusing unsafe checkpoint file name {one_line(str(name))!r}")
    return dest


def _fetch(file: CheckpointFile, dest: Path, stop: threading.Event) -> int:
    """Download one file (resuming a ``.part``); returns the bytes transferred now."""
    if not file.url.startswith(("https://", "http://")):
        raise DownloadError(f"{file.relative_file_name}: not an HTTP(S) URL")
    if dest.is_file() and dest.stat().st_size == file.size_bytes:
        return 0
    part = dest.with_name(dest.name + ".part")
    dest.parent.mkdir(parents=True, exist_ok=True)
    offset = part.stat().st_size if part.is_file() else 0
    if offset > file.size_bytes:
        offset = 0
    request = urllib.request.Request(file.url)
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    transferred = 0
    try:
        with urllib.request.urlopen(request, timeout=_TIMEOUT) as response:
            if offset and response.status != 206:
                offset = 0  # the server ignored Range: start over
            with part.open("r+b" if offset else "wb") as sink:
                sink.seek(offset)
                sink.truncate()
                while not stop.is_set():
                    chunk = response.read(_CHUNK)
                    if not chunk:
                        break
                    sink.write(chunk)
                    transferred += len(chunk)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset == file.size_bytes:
            pass  # the .part already holds everything
        else:
            raise DownloadError(f"{file.relative_file_name}: HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        raise DownloadError(f"{file.relative_file_name}: {exc}") from None
    if stop.is_set():
        return transferred
    size = part.stat().st_size
    if size != file.size_bytes:
        raise DownloadError(
            f"{file.relative_file_name}: got {size} bytes, expected {file.size_bytes} "
            "(run the command again to resume)"
        )
    part.replace(dest)
    return transferred


async def download_checkpoint_files(
    out: Output, pager: AsyncPager[CheckpointFile], folder: str, *, concurrency: int
) -> int:
    """Download every checkpoint file into ``folder``.

    Args:
        out: Where to print.
        pager: The job's checkpoint files.
        folder: The destination folder (created if missing).
        concurrency: Files downloaded at once.

    Returns:
        The exit code: 0 when every file is complete, 5 otherwise.
    """
    files: Sequence[CheckpointFile] = await pager
    root = await asyncio.to_thread(lambda: Path(folder).expanduser().resolve())
    per_node = len({f.node_rank for f in files}) > 1
    plan = [(f, target_path(root, f, per_node=per_node)) for f in files]
    stop = threading.Event()
    gate = asyncio.Semaphore(concurrency)
    done = failed = 0
    errors: list[str] = []
    total_bytes = sum(f.size_bytes for f in files)
    out.note(f"downloading {len(files)} files ({human_bytes(total_bytes)}) into {root}")
    with out.progress("downloading files", total=len(files)) as bar:

        async def one(file: CheckpointFile, dest: Path) -> None:
            nonlocal done, failed
            async with gate:
                try:
                    await asyncio.to_thread(_fetch, file, dest, stop)
                    done += 1
                    if out.json_mode:
                        out.json_line({"event": "file", "path": str(dest), "ok": True})
                except DownloadError as exc:
                    failed += 1
                    errors.append(one_line(str(exc)))
                    if out.json_mode:
                        out.json_line(
                            {"event": "file", "path": str(dest), "ok": False, "error": errors[-1]}
                        )
                bar(done, failed, len(files))

        try:
            async with asyncio.TaskGroup() as group:
                for file, dest in plan:
                    group.create_task(one(file, dest))
        finally:
            stop.set()  # lets worker threads end at their next chunk after Ctrl-C
    for error in errors[:10]:
        out.note(f"error: {error}")
    out.note(f"downloaded {done} of {len(files)} files into {root}, {failed} failed")
    if failed:
        out.note("run the same command again to resume")
        return 5
    return 0
