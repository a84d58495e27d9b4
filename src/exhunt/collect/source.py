"""Open whatever PATH the user gave: a folder, or a .zip of one."""

from __future__ import annotations

import os
import stat
import zipfile

from exhunt.collect.base import Collection
from exhunt.collect.directory import DirectoryCollection
from exhunt.collect.ziparchive import ZipCollection
from exhunt.errors import InputError


def open_collection(path: str) -> Collection:
    """A collection for PATH; raises InputError("cannot read PATH: ...") when it is unusable.

    The collection is re-openable from its `source` (the same string) in another process.
    """
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise InputError(f"cannot read {path}: no such file or folder") from None
    except PermissionError:
        raise InputError(f"cannot read {path}: permission denied") from None
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read {path}: {exc}") from None
    if stat.S_ISDIR(info.st_mode):
        _check_listable(path)
        return DirectoryCollection(path)
    if not stat.S_ISREG(info.st_mode):
        raise InputError(f"cannot read {path}: not a folder or a .zip archive")
    try:
        is_zip = zipfile.is_zipfile(path)
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not is_zip:
        what = "not a zip archive" if path.lower().endswith(".zip") else (
            "not a folder or a .zip archive"
        )
        raise InputError(f"cannot read {path}: {what}")
    return ZipCollection(path)


def _check_listable(path: str) -> None:
    try:
        with os.scandir(path):
            pass
    except PermissionError:
        raise InputError(f"cannot read {path}: permission denied") from None
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
