"""What a record number may be: letters, digits, ``-``, ``_`` and ``.``, at most 32 characters.

A record number travels into file names, ZIP member names and headers; anything else in it
(a line break, a quote, a slash) once broke every PDF download of its patient. Numbers saved
before this rule are never rewritten silently: migration ``patients.0004`` lists and audits
them, and ``manage.py record_numbers`` lets an admin fix each one (audited).
"""

import re

from django.core.validators import RegexValidator

MAX_LENGTH = 32
ALLOWED = re.compile(r"[A-Za-z0-9._-]+")
RULE = (
    "A record number may hold only letters, digits, hyphens (-), underscores (_) and full "
    f"stops (.), at most {MAX_LENGTH} characters."
)

validate_record_number = RegexValidator(r"\A" + ALLOWED.pattern + r"\Z", message=RULE,
                                        code="record_number")


def is_valid(number: str) -> bool:
    return len(number) <= MAX_LENGTH and ALLOWED.fullmatch(number) is not None


def invalid(patients) -> list[tuple[int, str]]:
    """(id, record number) of each patient in ``patients`` whose number breaks the rule."""
    return [(pk, number) for pk, number in patients.order_by("pk").values_list(
        "pk", "record_number") if not is_valid(number)]
