"""Validators shared by the apps' forms."""

from datetime import UTC, date, datetime

from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator

EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)


def plausible_datetime(value: datetime) -> None:
    """Refuse a date and time no clinic record can have. Near the ends of the calendar a typed
    time cannot even be converted to UTC to be stored, nor to the clinic's time to be shown
    (9999-12-31T23:59 in New York is in the year 10000 in UTC; 0001-01-01T00:00+14:00 is in
    year 0), so the form must refuse it before anything else looks at it."""
    if not EARLIEST <= value < LATEST:
        raise ValidationError(
            "Enter a date and time between 1900 and 2099.", code="out_of_range"
        )


def plausible_date(value: date) -> None:
    """Refuse a date no clinic record can have (a typo of the year: 0202, 20266)."""
    if not EARLIEST.date() <= value < LATEST.date():
        raise ValidationError("Enter a date between 1900 and 2099.", code="out_of_range")


# A telephone number as people write it: digits, spaces, + ( ) - . and an extension.
PHONE = RegexValidator(r"^[0-9+() .\-x]{7,30}$",
                       "A telephone number: digits, spaces and + ( ) - . only.")
# A Spravato device lot number (issue 13): 1-20 letters, digits or -.
LOT_NUMBER = RegexValidator(r"^[A-Za-z0-9-]{1,20}$",
                            "A lot number is 1–20 letters, digits or -.")
