"""Links for long tables: one ``reverse()`` per URL name instead of one per row.

``{% url %}`` resolves the URL name again for every row it is written in; a table of 50 rows
with two links each spends more time there than reading its data. :func:`path_maker` reverses
the name once, with markers in place of the arguments, and returns a function that puts the
real ones in: the same path as ``reverse(name, args=...)`` would give, script prefix included.
Only for arguments that are ours (ids, codes of the vocabularies), never text a user typed.
"""

import functools
from collections.abc import Callable

from django.conf import settings
from django.urls import get_script_prefix, get_urlconf, reverse

# Digits that match any converter of the app's URLs (int and str) and no real id.
_MARK = 908_070_605_040_302


def path_maker(name: str, arguments: int = 1) -> Callable[..., str]:
    """``path_maker("patients:detail")(12) == reverse("patients:detail", args=[12])``."""
    # Made once per URL name, script prefix and URL configuration: what reverse() reads.
    return _maker(name, arguments, get_script_prefix(), get_urlconf() or settings.ROOT_URLCONF)


@functools.lru_cache(maxsize=256)
def _maker(name: str, arguments: int, prefix: str, urlconf) -> Callable[..., str]:
    marks = [str(_MARK + n) for n in range(arguments)]
    path = reverse(name, args=marks, urlconf=urlconf).replace("{", "{{").replace("}", "}}")
    for n, mark in enumerate(marks):
        if path.count(mark) != 1:
            raise ValueError(f"cannot make paths of {name}")
        path = path.replace(mark, f"{{{n}}}")
    return path.format
