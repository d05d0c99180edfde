"""Where export files live: Django's ``exports`` storage (``settings.STORAGES``).

The embedded default is :class:`AtomicFileSystemStorage` under ``EXPORT_ROOT``; with
``EXPORT_S3_BUCKET`` set it is django-storages' S3 backend on any S3-compatible store, and web
nodes and workers then share no filesystem.

Nothing half-written is ever offered, on either store. A worker builds the file in an anonymous
local scratch file (gone with the process if it dies) and only then saves it under its final
name: on the filesystem as ``<name>.part`` renamed into place, on S3 as one upload that creates
the object only when complete (a single PUT, or a multipart upload that exists as an object only
once completed). The object is private: the bucket's default, no ACL is ever set.
"""

import io
import logging
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings
from django.core.files import File
from django.core.files.storage import FileSystemStorage, Storage, storages
from django.utils.functional import cached_property

logger = logging.getLogger(__name__)

PART = ".part"
# The store failing (a disk, or an S3 endpoint down or refusing): worth trying again later.
STORE_ERRORS = (OSError, BotoCoreError, ClientError)


class AtomicFileSystemStorage(FileSystemStorage):
    """Local files under ``EXPORT_ROOT`` (read when first used, so tests may change it), each
    written as ``<name>.part`` and renamed when complete: a file under its final name is whole.
    A name belongs to one export, so saving it again replaces it."""

    @cached_property
    def base_location(self):
        return self._value_or_setting(self._location, os.fspath(settings.EXPORT_ROOT))

    def _clear_cached_properties(self, setting, **kwargs):
        if setting == "EXPORT_ROOT":
            self.__dict__.pop("base_location", None)
            self.__dict__.pop("location", None)
        super()._clear_cached_properties(setting, **kwargs)

    def get_available_name(self, name, max_length=None):
        return name

    def _save(self, name, content):
        final = Path(self.path(name))
        final.parent.mkdir(parents=True, exist_ok=True)
        part = final.with_name(final.name + PART)
        with open(part, "wb") as out:
            for chunk in content.chunks():
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        os.replace(part, final)  # atomic: the file is whole or absent
        return name

    def delete(self, name):
        """Delete the file and whatever a process killed while saving it left."""
        super().delete(name)
        Path(self.path(name) + PART).unlink(missing_ok=True)


def storage() -> Storage:
    return storages["exports"]


def name_of(export) -> str:
    return f"{export.pk}.{export.kind}"


@contextmanager
def scratch() -> Iterator[io.BufferedRandom]:
    """A local file to build an export in: it has no name, so nothing outlives the process."""
    with tempfile.TemporaryFile() as file:
        yield file


@contextmanager
def text(scratch_file) -> Iterator[io.TextIOWrapper]:
    """``scratch_file`` written as UTF-8 CSV text, left open for :func:`publish`."""
    out = io.TextIOWrapper(scratch_file, encoding="utf-8", newline="")
    try:
        yield out
    finally:
        out.flush()
        out.detach()


def publish(export, scratch_file) -> int:
    """Save the complete ``scratch_file`` under the export's final name; return its size."""
    scratch_file.flush()
    size = scratch_file.seek(0, os.SEEK_END)
    scratch_file.seek(0)
    storage().save(name_of(export), File(scratch_file, name=name_of(export)))
    return size


def open_file(export):
    """The export's file opened for reading (a file-like object with ``size``), or None if it is
    not (or no longer) there. From S3 it is read as it arrives: django-storages' own file object
    would first copy the whole object to the web node's disk."""
    try:
        handle = storage().open(name_of(export), "rb")
        s3_object = getattr(handle, "obj", None)  # django-storages' S3File
        if s3_object is None:
            return handle
        return _Streamed(s3_object.get()["Body"], s3_object.content_length)
    except FileNotFoundError:
        return None
    except ClientError as error:  # deleted between the look and the read
        if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            return None
        raise


class _Streamed:
    """An S3 object's body, read in chunks as it comes, with its size."""

    def __init__(self, body, size: int):
        self.body, self.size = body, size

    def read(self, amount: int = -1) -> bytes:
        return self.body.read(None if amount is None or amount < 0 else amount)

    def close(self) -> None:
        self.body.close()


def exists(export) -> bool:
    return storage().exists(name_of(export))


def remove(export) -> None:
    storage().delete(name_of(export))


def reachable() -> bool:
    """The store answers: the bucket is there and ours to use, or the folder is writable.
    Says nothing about why not, except in the log (the type of the error only)."""
    store = storage()
    try:
        if isinstance(store, FileSystemStorage):
            Path(store.location).mkdir(parents=True, exist_ok=True)
            return os.access(store.location, os.W_OK)
        store.connection.meta.client.head_bucket(Bucket=store.bucket_name)
        return True
    except Exception as error:  # any failure means "not ready", never a 500
        logger.warning("export storage unreachable: %s", type(error).__name__)
        return False
