"""Writing a run's files safely: atomic writes, checksums, one-line errors for a full or read-only
disk, and a lock that keeps a second process off a run directory.

- `write_atomically` writes a hidden temporary file, flushes it to disk and renames it into
  place; if anything fails the temporary file is removed and the old file is untouched.
- `replace_directory` fills a hidden temporary directory, checksums and flushes it, and renames
  it into place, so a directory (a checkpoint) is replaced whole or not at all.
- `write_checksums` / `verify_checksums`: `checksums.json` holds the SHA-256 of every other file
  of a directory (a checkpoint), so a truncated or bit-flipped file is found before it is loaded.
- `RunLock`: an exclusive `flock` on `RUN/.lock`, released by the kernel when the holder exits
  (even by kill -9), so a stale lock never blocks a run.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import shutil
import socket
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

CHECKSUMS, LOCK = "checksums.json", ".lock"

_REASONS = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EACCES: "no permission to write there",
    errno.EPERM: "no permission to write there",
    errno.EROFS: "the file system is read-only",
}


class StorageError(RuntimeError):
    """A file of a run could not be written (no space, no permission, ...): one-line message."""


class DamagedFile(ValueError):
    """A file that does not match the checksum written with it, or cannot be read at all."""


class RunLocked(RuntimeError):
    """Another process holds the run directory's lock."""


def storage_error(error: OSError, action: str) -> StorageError:
    """A StorageError saying what could not be done (`action`), where and why."""
    reason = _REASONS.get(error.errno, error.strerror or str(error))
    where = f" ({error.filename})" if error.filename else ""
    return StorageError(f"cannot {action}{where}: {reason}")


def fsync_dir(path: Path) -> None:
    """Flush a directory's entries (new names, renames) to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomically(path: Path, data: str | bytes) -> None:
    """Replace `path` by `data` whole, or leave it as it was (the temporary file is removed)."""
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        with open(temporary, "wb") as handle:
            handle.write(data.encode() if isinstance(data, str) else data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def replace_directory(directory: Path, fill: Callable[[Path], None], action: str) -> Path:
    """Call `fill(temporary)` to write the files of `directory` into a hidden temporary
    directory, add their checksums, flush everything and rename it into place (atomic on POSIX).
    A failed write removes the temporary directory, leaves `directory` as it was and raises
    StorageError naming `action`."""
    temporary = directory.with_name(f".{directory.name}.tmp")
    try:
        directory.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(temporary, ignore_errors=True)
        temporary.mkdir()
        fill(temporary)
        write_checksums(temporary)
        for file in temporary.iterdir():
            with open(file, "rb") as handle:
                os.fsync(handle.fileno())
        if directory.exists():
            shutil.rmtree(directory)
        os.replace(temporary, directory)
        fsync_dir(directory.parent)
    except OSError as error:
        shutil.rmtree(temporary, ignore_errors=True)
        raise storage_error(error, action) from None
    return directory


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def write_checksums(directory: Path) -> None:
    """`directory/checksums.json`: {file name: SHA-256} of every other file in it."""
    sums = {f.name: sha256_of(f) for f in sorted(directory.iterdir()) if f.name != CHECKSUMS}
    (directory / CHECKSUMS).write_text(json.dumps(sums, indent=1) + "\n")


def verify_checksums(directory: Path, required: tuple[str, ...]) -> None:
    """Raise DamagedFile naming the first file of `directory` that is missing, not listed in its
    checksums, or whose content changed since the checksums were written."""
    listing = directory / CHECKSUMS
    try:
        sums = json.loads(listing.read_text())
        if not isinstance(sums, dict):
            raise ValueError("not a mapping")
    except FileNotFoundError:
        raise DamagedFile(f"{listing} is missing: the checkpoint cannot be checked") from None
    except (OSError, ValueError) as error:
        raise DamagedFile(f"{listing} is damaged ({error})") from None
    for name in sorted(set(sums) | set(required)):
        file = directory / name
        if not file.is_file():
            raise DamagedFile(f"{file} is missing")
        if name not in sums:
            raise DamagedFile(f"{file} has no checksum in {listing}")
        if sha256_of(file) != sums[name]:
            raise DamagedFile(
                f"{file} is damaged: its content does not match the checksum written with it "
                f"({file.stat().st_size} bytes now)"
            )


class RunLock:
    """Hold `RUN/.lock` for as long as the run trains; a second holder is refused at once.

    with RunLock(run_dir):
        ...  # nobody else trains this run now
    """

    def __init__(self, run_dir: Path):
        self.path = run_dir / LOCK
        self.handle = None

    def __enter__(self) -> RunLock:
        handle = open(self.path, "a+")  # noqa: SIM115 (held until __exit__)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise RunLocked(
                f"{self.path.parent} is in use by {holder} (lock {self.path}; it is released "
                "when that process ends)"
            ) from None
        handle.seek(0)
        handle.truncate()
        started = datetime.now().isoformat(timespec="seconds")
        handle.write(f"process {os.getpid()} on {socket.gethostname()} since {started}\n")
        handle.flush()
        self.handle = handle
        return self

    def __exit__(self, *exc) -> None:
        if self.handle is not None:
            self.handle.truncate(0)
            self.handle.close()  # closing releases the flock
            self.handle = None
