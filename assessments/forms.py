from django import forms
from django.utils import timezone
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from clinical.instruments import PHQ9_DIFFICULTY, InstrumentDef, validate_items
from clinical.vocab import Instrument
from courses.models import Course
from ketacare.forms import SubmitOnceForm
from ketacare.validators import plausible_datetime
from ketacare.widgets import DateTimeInput


class AssessmentForm(SubmitOnceForm):
    """Item-by-item scoring with each anchor's wording beside its score (SPEC §1).

    The total is never typed: it is shown live in the browser and recomputed here.
    """

    administered_at = forms.DateTimeField(
        label="Date and time", widget=DateTimeInput(), validators=[plausible_datetime]
    )

    def __init__(self, *args, definition: InstrumentDef, course: Course, **kwargs):
        super().__init__(*args, **kwargs)
        self.definition = definition
        self.course = course
        for item in definition.items:
            label = f"{item.number}. {item.label}"
            self.fields[self.item_field(item.number)] = forms.TypedChoiceField(
                label=label,
                choices=[(score, f"{score} · {text}") for score, text in item.anchors.items()],
                coerce=int,
                widget=forms.RadioSelect(attrs={"class": "score-item"}),  # the grid draws it
                error_messages={
                    "required": f"Item {item.number} ({item.label}) is required.",
                    "invalid_choice": f"Item {item.number} ({item.label}) must be "
                    f"0–{definition.item_max}.",
                },
            )
        if definition.code == Instrument.PHQ9:
            self.fields["difficulty"] = forms.ChoiceField(
                label="If you checked off any problems, how difficult have these problems made "
                "it for you to do your work, take care of things at home, or get along with "
                "other people?",
                choices=[("", "—")] + list(PHQ9_DIFFICULTY), required=False,
                help_text="From the keyboard: 0 (not difficult at all) to 3 (extremely), then "
                "Enter signs.",
            )
        # The fields around the grid are written by the template as Bootstrap 5 markup
        # (assessments/_field.html), their widgets with Bootstrap's classes.
        for name, field in self.fields.items():
            if name in BOOTSTRAP_CLASSES:
                field.widget.attrs["class"] = BOOTSTRAP_CLASSES[name]

    @staticmethod
    def item_field(number: int) -> str:
        return f"item_{number}"

    def item_fields(self):
        return [self[self.item_field(item.number)] for item in self.definition.items]

    def score_rows(self) -> list[dict]:
        """The grid's rows: one per item, a radio per score, the anchors at hand. The first
        item with an error (else item 1, on a fresh form) gets the focus, so the page opens
        where the clinician has to look; every score typed so far stays checked.

        Each row's cells come as markup written here (``cells``): seventy radios through the
        template language cost more than the rest of the page."""
        focus = self._focus_item()
        rows = []
        for item in self.definition.items:
            bound = self[self.item_field(item.number)]
            value = "" if bound.value() is None else str(bound.value())
            choices = [
                {"score": score, "anchor": anchor, "checked": value == str(score),
                 "id": f"{bound.auto_id}_{score}"}
                for score, anchor in item.anchors.items()
            ]
            if item.number == focus:
                target = next((c for c in choices if c["checked"]), choices[0])
                target["autofocus"] = True
            errors = bound.errors
            rows.append({
                "item": item, "field": bound, "choices": choices, "errors": errors,
                "cells": _cells(f"{item.number}. {item.label}", bound.html_name, choices,
                                bool(errors)),
                # Anchors worth reading (MADRS names 0, 2, 4 and 6; odd scores lie between).
                "anchors": " · ".join(
                    f"{score} {anchor}" for score, anchor in item.anchors.items()
                    if not anchor.startswith("between")
                ),
            })
        return rows

    def _focus_item(self) -> int | None:
        if not self.is_bound:
            return self.definition.items[0].number
        if self.errors.get("administered_at"):
            return None  # the date field gets the focus (autofocus set in full_clean)
        for item in self.definition.items:
            if self.errors.get(self.item_field(item.number)):
                return item.number
        return None

    def error_items(self) -> list[tuple[int, str]]:
        """(item number, message) for the summary above the grid, linking to each row."""
        return [
            (item.number, error)
            for item in self.definition.items
            for error in self.errors.get(self.item_field(item.number), [])
        ]

    def full_clean(self):
        super().full_clean()
        if self.is_bound and self.errors.get("administered_at"):
            self.fields["administered_at"].widget.attrs["autofocus"] = True
        for name in self.errors:
            if name in BOOTSTRAP_CLASSES and name in self.fields:
                self.fields[name].widget.attrs["class"] = f"{BOOTSTRAP_CLASSES[name]} is-invalid"

    def clean_administered_at(self):
        at = self.cleaned_data["administered_at"]
        if at > timezone.now() + timezone.timedelta(hours=1):
            raise forms.ValidationError("An assessment cannot be dated in the future.")
        return at

    def clean(self):
        data = super().clean()
        items = [data.get(self.item_field(item.number)) for item in self.definition.items]
        if None not in items:
            validate_items(self.definition, items)  # the fields already checked each range
            data["items"] = items
            data["total"] = sum(items)
        return data


# The classes crispy-forms gave these widgets, which the page's style and tests know.
BOOTSTRAP_CLASSES = {"administered_at": "datetimeinput form-control",
                     "difficulty": "select form-select", "reason": "textinput form-control"}


def _cells(label: str, name: str, choices: list[dict], invalid: bool) -> SafeString:
    """A grid row's cells: a labelled radio per score, its anchor in the title (escaped
    here, as the template language would)."""
    label, name = escape(label), escape(name)
    extra = ' aria-invalid="true"' if invalid else ""
    cells = []
    for choice in choices:
        score, anchor = choice["score"], escape(choice["anchor"])
        marks = (" checked" if choice["checked"] else "") + (
            " autofocus" if choice.get("autofocus") else "") + extra
        cells.append(
            f'<td class="score-cell"><label title="{score}: {anchor}"><input type="radio" '
            f'class="form-check-input score-item" name="{name}" value="{score}" '
            f'id="{escape(choice["id"])}" aria-label="{label}: {score}, {anchor}"{marks}>'
            f'<span aria-hidden="true">{score}</span></label></td>'
        )
    return mark_safe("".join(cells))  # noqa: S308 (every value above escaped)


class CorrectionForm(AssessmentForm):
    reason = forms.CharField(
        label="Reason for correction", max_length=200,
        help_text="Kept with both entries in the history.",
    )
