"""The one place a file name is made from data: download names and ZIP member names.

A record number (or any other text) may hold line breaks, quotes, slashes, ``..`` or anything
else; none of it may reach a ``Content-Disposition`` header or a ZIP member name, where it
would break the header (a 500) or climb out of the folder an archive is unpacked into.
"""

import re
import unicodedata

from django.utils.http import content_disposition_header

MAX_LENGTH = 100
_UNSAFE = re.compile(r"[^\w.-]+", flags=re.ASCII)
_RUNS = re.compile(r"[-.]{2,}")  # "..", "-.", "--": one "-"


def _clean(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return _RUNS.sub("-", _UNSAFE.sub("-", ascii_text)).strip(".-")


def safe_filename(name: str, fallback: str = "download") -> str:
    """``name`` with only ASCII letters, digits, ``-``, ``_`` and ``.``: accents are dropped
    (é → e), every other run of characters becomes one ``-``, no ``..`` and no leading or
    trailing dot or dash (no hidden files, no climbing out of a folder). At most 100
    characters, keeping the extension. Nothing left: ``fallback`` (made safe too)."""
    stem, dot, extension = str(name).rpartition(".")
    if not dot or not extension.isascii() or not extension.isalnum() or len(extension) > 10:
        stem, extension = str(name), ""
    stem = _clean(stem)
    if not stem:
        return safe_filename(fallback) if fallback != name else "download"
    suffix = f".{extension}" if extension else ""
    return stem[:MAX_LENGTH - len(suffix)].rstrip(".-") + suffix


def attachment(filename: str) -> str:
    """A ``Content-Disposition`` value for a download of ``filename`` (RFC 6266, as Django's
    FileResponse writes it), the name made safe first."""
    return content_disposition_header(as_attachment=True, filename=safe_filename(filename))
