"""Where bytes live: a store is a root URI plus the few operations the lake and the landing reader need.

Only this module knows whether a path is a local folder or an object-store prefix, so the lake, the
landing reader and the engines work on relative paths and `uri()`s alike.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import stat
import tempfile
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlparse


class StoreError(RuntimeError):
    """A store cannot be used (missing, unreadable, unsupported); the message is one clear line."""


class LocalStore:
    """A folder on this machine (a plain path or a file:// URI)."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(_local_path(str(root))).expanduser().resolve()

    def __repr__(self) -> str:
        return f"LocalStore({str(self.root)!r})"

    def uri(self, rel: str = "") -> str:
        return str(self.root / rel) if rel else str(self.root)

    def exists(self, rel: str = "") -> bool:
        return (self.root / rel).exists()

    def size(self, rel: str) -> int:
        return (self.root / rel).stat().st_size

    def is_dir(self, rel: str = "") -> bool:
        return (self.root / rel).is_dir()

    def modified(self, rel: str) -> float:
        """When `rel` was last written (seconds since the epoch)."""
        return (self.root / rel).stat().st_mtime

    def fingerprint(self, rel: str) -> str:
        """What tells a version of file `rel` from another without reading it: size, modification time (ns)
        and inode, the quick check of make, rsync and git's index, and the inode's change time (ns). Rewriting
        a file in place, or replacing it (a new inode), changes it; so does a chmod, chown or ACL change, which
        leaves the modification time alone but may make a file readable that was not."""
        st = (self.root / rel).stat()
        return f"{st.st_size}:{st.st_mtime_ns}:{st.st_ino}:{st.st_ctime_ns}"

    def list_files(self, prefix: str = "", unlisted: dict[str, OSError] | None = None) -> list[str]:
        """Relative paths of every entry below `prefix`, at any depth, except the folders walked into, sorted.

        Besides regular files that is whatever else lies there: links (dangling, looping, or to a folder,
        which is listed rather than followed: links can loop), FIFOs, sockets and devices, so that a caller
        can report them. `kind` tells them apart without opening anything. Folders that cannot be listed
        (no permission, an I/O error) go into `unlisted` (relative path -> the error) when it is given:
        whatever they hold is unknown, which a caller must be able to say rather than skip it unseen.
        """
        base = self.root / prefix
        if not base.is_dir():
            return []

        def unlistable(err: OSError) -> None:
            if unlisted is not None and err.filename is not None:
                unlisted[Path(err.filename).relative_to(self.root).as_posix()] = err

        found = [
            Path(d) / name
            for d, dirs, files in os.walk(base, onerror=unlistable)
            for name in [*files, *(x for x in dirs if os.path.islink(os.path.join(d, x)))]
        ]
        return sorted(p.relative_to(self.root).as_posix() for p in found)

    def kind(self, rel: str) -> str:
        """What `rel` is, by stat alone (never opened: opening a FIFO blocks until someone writes to it).

        "file" for a regular file or a link to one, else "fifo", "socket", "device" or "folder". Raises
        OSError, its strerror saying why, when that cannot be told: a dangling or looping link, no access.
        """
        path = self.root / rel
        try:
            mode = os.stat(path).st_mode
        except FileNotFoundError:
            why = "dangling symbolic link" if os.path.islink(path) else "removed after it was listed"
            raise FileNotFoundError(errno.ENOENT, why) from None
        except OSError as err:
            if err.errno == errno.ELOOP:
                raise OSError(errno.ELOOP, "symbolic link loop") from None
            raise
        if stat.S_ISREG(mode):
            return "file"
        if stat.S_ISDIR(mode):
            return "folder"
        if stat.S_ISFIFO(mode):
            return "fifo"
        return "socket" if stat.S_ISSOCK(mode) else "device"

    def list_dirs(self, prefix: str = "") -> list[str]:
        base = self.root / prefix
        return sorted(p.name for p in base.iterdir() if p.is_dir()) if base.is_dir() else []

    def open(self, rel: str) -> BinaryIO:
        """A regular file, for reading. Opened without blocking and refused unless regular: a FIFO put in
        its place after `kind` looked at it must not hang the reader."""
        try:
            fd = os.open(self.root / rel, os.O_RDONLY | os.O_NONBLOCK)
        except FileNotFoundError:
            raise FileNotFoundError(errno.ENOENT, "removed after it was listed") from None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise OSError(errno.EINVAL, "not a regular file")
            os.set_blocking(fd, True)
            return os.fdopen(fd, "rb")
        except BaseException:
            os.close(fd)
            raise

    def read_bytes(self, rel: str) -> bytes:
        return (self.root / rel).read_bytes()

    def write_atomic(self, rel: str, data: bytes) -> None:
        """Replace `rel` in one step: readers see the old bytes or the new ones, never a mix."""
        target = self.root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def make_private(self, rel: str) -> None:
        """Create `rel` as a folder only this user can enter (0700, whatever the umask), or tighten it and
        the files in it (0600) if an older version left them readable."""
        target = self.root / rel
        target.mkdir(mode=0o700, parents=True, exist_ok=True)
        target.chmod(0o700)
        for child in target.iterdir():
            if child.is_file():
                child.chmod(0o600)

    def write_private(self, rel: str, data: bytes) -> None:
        """`write_atomic` into a private folder (see make_private); the file is mkstemp's, which is 0600."""
        self.make_private(Path(rel).parent.as_posix())
        self.write_atomic(rel, data)

    def put_file(self, local: str, rel: str, checksum: str | None = None) -> None:
        """Copy `local` to `rel`, replacing it in one step."""
        target = self.root / rel
        if Path(local).resolve() == target.resolve():
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=target.parent)
        os.close(fd)
        try:
            shutil.copyfile(local, tmp)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def checksum(self, rel: str) -> str | None:
        target = self.root / rel
        return file_sha256(target) if target.is_file() else None

    def ensure_root(self) -> bool:
        created = not self.root.exists()
        self.root.mkdir(parents=True, exist_ok=True)
        return created

    def mark_folder(self, rel: str) -> None:
        (self.root / rel).mkdir(parents=True, exist_ok=True)

    def local_path(self, rel: str) -> str | None:
        """A path on this machine where `rel` can be written directly, if there is one."""
        return str(self.root / rel)

    def duckdb_setup(self) -> list[str]:
        """Statements a DuckDB connection needs before it reads or writes `uri()`s: none locally."""
        return []

    def make_dirs(self, rel: str) -> None:
        (self.root / rel).mkdir(parents=True, exist_ok=True)

    def delete_tree(self, rel: str) -> None:
        target = self.root / rel
        if target.is_dir():
            shutil.rmtree(target)
        else:
            target.unlink(missing_ok=True)


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _local_path(uri: str) -> str:
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return parsed.path
    if parsed.scheme and len(parsed.scheme) > 1:  # one letter would be a Windows drive
        raise StoreError(f"unsupported location {uri!r}: use a local folder, file:// or s3://")
    return uri


def is_s3(uri: str | os.PathLike) -> bool:
    return str(uri).startswith("s3://")


def open_store(uri: str | os.PathLike, endpoint_url: str | None = None):
    """The store for a location URI: s3://bucket/prefix or a local folder."""
    if is_s3(uri):
        from .s3 import S3Store

        return S3Store(str(uri), endpoint_url=endpoint_url)
    return LocalStore(uri)
