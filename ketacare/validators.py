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


def plain_number(field, what: str, low=None, high=None, unit: str = "") -> None:
    """Make a number field speak plainly: "Weight must be between 25 and 350 kg." rather than
    "Ensure this value is greater than or equal to 25.", and a typed word says it is not a
    number rather than "This field is required." (a browser's number input drops letters
    before sending, so the field takes text and the server judges it)."""
    from django import forms
    from django.core.validators import MaxValueValidator, MinValueValidator

    # Django %-formats the messages raised with parameters (limits, digits): a "%" unit is
    # written "%%" there, and as itself in "invalid", which is raised without any.
    escaped = unit.replace("%", "%%")
    words = f"{what} must be between {low} and {high}{' ' + escaped if unit else ''}."
    if low is None:  # the limits depend on other fields (a dose on its route): clean() says
        words = f"{what} has too many digits."
    else:
        field.validators = [
            v for v in field.validators
            if not isinstance(v, MinValueValidator | MaxValueValidator)
        ] + [MinValueValidator(low, message=words), MaxValueValidator(high, message=words)]
    whole = isinstance(field, forms.IntegerField) and not isinstance(field, forms.DecimalField)
    field.error_messages.update({
        "invalid": f"{what} must be a {'whole ' if whole else ''}number"
                   f"{' in ' + unit if unit else ''}.",
        "min_value": words, "max_value": words,
        "max_digits": words, "max_whole_digits": words,
        "max_decimal_places": f"{what} takes at most "
                              f"{getattr(field, 'decimal_places', 0)} decimal place(s).",
    })
    attrs = {**field.widget.attrs, "inputmode": "numeric" if whole else "decimal"}
    for key in ("min", "max", "step"):
        attrs.pop(key, None)
    field.widget = forms.TextInput(attrs=attrs)


# A telephone number as people write it: digits, spaces, + ( ) - . and an extension.
PHONE = RegexValidator(r"^[0-9+() .\-x]{7,30}$",
                       "A telephone number: digits, spaces and + ( ) - . only.")
# A Spravato device lot number (issue 13): 1-20 letters, digits or -.
LOT_NUMBER = RegexValidator(r"^[A-Za-z0-9-]{1,20}$",
                            "A lot number is 1–20 letters, digits or -.")
