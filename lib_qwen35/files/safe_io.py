"""Reading and writing files so that no file can hang the process, exhaust its memory, or be overwritten.

Reading: a path is stat'ed before it is opened and must be a regular file. Opening a FIFO blocks forever, a
device such as /dev/zero never ends, and a folder gives a confusing error. The file is then opened
non-blocking and fstat'ed again, because the path may have been swapped for a FIFO in between. Every read
is bounded.
Identity: what a cache may take as "the same file": resolved path, device, inode, size, mtime and ctime.
`cp -p`, `rsync -a` and unzip keep the size and the mtime, but they give a new inode or a new ctime, and
no user tool can set the ctime.
Writing: `check_output` runs before the work. The target must not be a file this run reads, nor an
existing file that the library did not write (each writer says how to recognise its own files), and its
folder must accept a new file. `atomic_output` writes a temporary file beside the target and renames it
over the target (os.replace), so a crash or a full disk never leaves a half-written output.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat

from ..errors import Qwen35Error

MARK_KEY = "written_by"       # metadata key (safetensors) / top-level key (JSON) of the files we write
MARK_VALUE = "lib_qwen35"
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)   # POSIX only; Windows has no FIFOs in the file system
_OPEN_FLAGS = os.O_RDONLY | _NONBLOCK | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)


def with_article(what: str) -> str:
    """`what` with its indefinite article: "an alignment file", "a weights file"."""
    return ("an " if what[:1].lower() in "aeiou" and what[:1] else "a ") + what


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    return "not a regular file"


def _os_problem(error: OSError) -> str:
    if isinstance(error, FileNotFoundError):
        return "was not found"
    if isinstance(error, PermissionError):
        return "cannot be read: permission denied (check the file's and its folders' permissions)"
    return f"cannot be read ({error.strerror or error})"


def _fail(error, path, text: str, fix: str):
    return error(f"{path}: {text}." + (f" {fix}" if fix else ""))


def stat_regular(path, what: str, error=Qwen35Error, fix: str = "") -> os.stat_result:
    """os.stat(path) (symlinks followed); `path` must be a regular file, else `error` naming `what`."""
    try:
        st = os.stat(path)
    except (OSError, ValueError) as e:      # ValueError: a NUL byte in the path
        raise _fail(error, path, f"the {what} {_os_problem(e) if isinstance(e, OSError) else 'is not a valid path'}",
                    fix) from None
    if stat.S_ISDIR(st.st_mode):
        raise _fail(error, path, f"is a folder, not {with_article(what)}", fix or "Give the path of the file itself.")
    if not stat.S_ISREG(st.st_mode):
        raise _fail(error, path, f"is {_kind(st.st_mode)}, not a regular file, so it cannot be {with_article(what)}",
                    fix or "Point to a regular file.")
    return st


def open_regular(path, what: str, error=Qwen35Error, fix: str = ""):
    """(unbuffered binary file, its fstat) for a regular file; never blocks, even on a swapped-in FIFO."""
    stat_regular(path, what, error, fix)
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as e:
        raise _fail(error, path, f"the {what} {_os_problem(e)}", fix) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise _fail(error, path,
                        f"is {_kind(st.st_mode)}, not a regular file, so it cannot be {with_article(what)}", fix)
        return os.fdopen(fd, "rb", buffering=0), st
    except BaseException:
        os.close(fd)
        raise


def read_into(f, buffer: memoryview, path, what: str, error=Qwen35Error) -> None:
    """Fill `buffer` from the current position of `f`; a short file is `error` (it shrank while read)."""
    done = 0
    while done < len(buffer):
        try:
            n = f.readinto(buffer[done:])
        except OSError as e:
            raise _fail(error, path, f"reading the {what} failed ({e.strerror or e})", "") from None
        if not n:
            raise _fail(error, path, f"the {what} ended {len(buffer) - done} bytes early: it was truncated or "
                                     f"replaced while being read", "Wait until the copy or download finishes.")
        done += n


def read_bounded(path, what: str, max_bytes: int, error=Qwen35Error, fix: str = "", size_fix: str = "") -> bytes:
    """The whole file, at most `max_bytes` (checked before reading, and again while reading). `fix` ends
    every message, `size_fix` the one about the size."""
    f, st = open_regular(path, what, error, fix)
    fix = size_fix or fix
    with f:
        if st.st_size > max_bytes:
            raise _fail(error, path, f"is {st.st_size:,} bytes; {with_article(what)} is at most {max_bytes:,}", fix)
        chunks, total = [], 0
        while True:
            chunk = f.read(min(1 << 20, max_bytes + 1 - total))
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
            total += len(chunk)
            if total > max_bytes:
                raise _fail(error, path, f"grew past {max_bytes:,} bytes while being read; "
                                         f"{with_article(what)} is at most that", fix)


def read_text(path, what: str, max_bytes: int, error=Qwen35Error, fix: str = "", size_fix: str = "") -> str:
    data = read_bounded(path, what, max_bytes, error, fix, size_fix)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise _fail(error, path, f"the {what} is not UTF-8 text ({e.reason} at byte {e.start})",
                    fix or "Save it as UTF-8.") from None


# ---- identity -----------------------------------------------------------------------------------------
def identity_from_stat(real_path: str, st: os.stat_result) -> str:
    return f"{real_path}|{st.st_dev}|{st.st_ino}|{st.st_size}|{st.st_mtime_ns}|{st.st_ctime_ns}"


def file_identity(path) -> str:
    """A cheap identity for caches (a stat, no read). Raises OSError when the file cannot be stat'ed."""
    real = os.path.realpath(os.fspath(path))
    return identity_from_stat(real, os.stat(real))


def same_file(st: os.stat_result, other: os.stat_result) -> bool:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns) == \
        (other.st_dev, other.st_ino, other.st_size, other.st_mtime_ns, other.st_ctime_ns)


# ---- writing ------------------------------------------------------------------------------------------
def check_output(path, what: str, *, inputs=(), ours=None, error=Qwen35Error) -> str:
    """Before the work: may `path` be written? Returns the absolute path, or raises `error` with the fix.

    inputs: (label, path) pairs of the files this run reads (e.g. ("weights file", W)); the target may be
    none of them (compared by device and inode, so a hard link or another spelling is caught too).
    ours: predicate(path) -> bool telling whether an existing target is one of our outputs; anything else
    that exists is refused. The folder must exist and accept a new file (probed with a temporary file)."""
    path = os.path.abspath(os.fspath(path))
    folder = os.path.dirname(path)
    if not os.path.isdir(folder):
        raise error(f"cannot write the {what} {path}: the folder {folder} does not exist. Create it, or pick "
                    f"another path.")
    try:
        st = os.stat(path)
    except FileNotFoundError:
        st = None
    except OSError as e:
        raise error(f"cannot write the {what} {path}: {e.strerror or e}. Pick another path.") from None
    if st is not None:
        if stat.S_ISDIR(st.st_mode):
            raise error(f"cannot write the {what} to {path}: it is a folder. Give a file name, e.g. "
                        f"{os.path.join(path, 'out' + _suffix(what))}.")
        for label, other in inputs:
            try:
                if other and os.path.samestat(st, os.stat(other)):
                    raise error(f"refusing to write the {what} to {path}: that is the {label} this command "
                                f"reads, and writing would destroy it. Pick another output path.")
            except OSError:
                continue
        if not stat.S_ISREG(st.st_mode):
            raise error(f"refusing to write the {what} to {path}: it is {_kind(st.st_mode)}. Pick another path.")
        if ours is None or not _safe_predicate(ours, path):
            raise error(f"refusing to overwrite {path}: it exists and is not {with_article(what)} written by this tool "
                        f"(it may be your data). Pick another output path, or delete the file first.")
    check_writable_folder(folder, what, error)
    return path


def check_writable_folder(folder, what: str, error=Qwen35Error) -> None:
    """The folder accepts a new file (probed with a uniquely named temporary file, removed at once)."""
    try:
        os.remove(_new_temp(os.fspath(folder), "lib_qwen35-write-probe"))
    except OSError as e:
        raise error(f"cannot write the {what} into {folder}: {e.strerror or e} (a read-only place, no "
                    f"permission or a full disk). Pick a writable folder.") from None


def _new_temp(folder: str, base: str) -> str:
    """Create an empty, uniquely named file in `folder` (mode 0666 less the umask, unlike mkstemp's 0600)."""
    for _ in range(100):
        tmp = os.path.join(folder, f".{base[:80]}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        return tmp
    raise FileExistsError(f"cannot create a temporary file in {folder}")


def _suffix(what: str) -> str:
    return ".json" if "JSON" in what else ".safetensors"


def _safe_predicate(predicate, path) -> bool:
    try:
        return bool(predicate(path))
    except (Qwen35Error, OSError, ValueError):
        return False


@contextlib.contextmanager
def atomic_output(path):
    """Yields a temporary path beside `path`; when the body succeeds it is renamed over `path`, when it
    fails it is removed (the old file, if any, stays as it was)."""
    path = os.path.abspath(os.fspath(path))
    tmp = _new_temp(os.path.dirname(path), os.path.basename(path))
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


def write_text_atomic(path, text: str) -> None:
    with atomic_output(path) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
