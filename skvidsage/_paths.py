"""What is wrong with a path that should be a regular, readable file.

The one place that words these reasons, for the video decoder and the
TFRecord loader: a symlink loop, a dangling link, a directory, a FIFO or a
device each get their own reason instead of "no such file" (or a hang).
"""

import errno
import os
import stat

__all__ = ["path_problem"]

_SPECIAL_FILES = {
    stat.S_IFIFO: "named pipe (FIFO)",
    stat.S_IFSOCK: "socket",
    stat.S_IFCHR: "character device",
    stat.S_IFBLK: "block device",
}


def path_problem(path):
    """Return ``(size, None)`` for a non-empty regular file, else ``(0, reason)``.

    Checked before a reader (FFmpeg, the TFRecord reader) opens it: opening
    a FIFO waits for a writer, a device never ends, and a symlink loop or a
    dangling link is not "no such file" (``os.path.exists`` says False for
    all three).
    """
    try:
        info = os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return 0, (
                "symlink loop: its symbolic links point back at each other and "
                "never reach a file; fix or remove the link"
            )
        if os.path.islink(path):
            return 0, (
                f"dangling symlink: it points to {os.readlink(path)!r}, which "
                "does not exist; fix the link or restore the file"
            )
        if exc.errno == errno.ENOTDIR:
            return 0, "no such file: a part of its path is a file, not a folder"
        if exc.errno == errno.ENOENT:
            return 0, "no such file"
        return 0, f"cannot read: {(exc.strerror or str(exc)).lower()}"
    if stat.S_ISDIR(info.st_mode):
        return 0, "not a file: a directory; pass the video files in it instead"
    if not stat.S_ISREG(info.st_mode):
        kind = _SPECIAL_FILES.get(stat.S_IFMT(info.st_mode), "special file")
        return 0, (
            f"not a file: a {kind}, which a reader would wait on or read "
            "without end; save it to a regular file first"
        )
    if info.st_size == 0:
        return 0, "empty file (0 bytes)"
    return info.st_size, None
