from django.contrib import messages
from django.db import IntegrityError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from accounts.access import (
    get_assessment_for_user,
    get_course_for_user,
    records_reader,
    records_writer,
)
from assessments import actions
from assessments.forms import AssessmentForm, CorrectionForm
from assessments.models import Assessment
from clinical.instruments import INSTRUMENTS
from clinical.vocab import Instrument
from ketacare.forms import already_saved
from patients.actions import record_view


def _definition(code: str):
    try:
        return INSTRUMENTS[Instrument(code)]
    except ValueError:
        raise Http404 from None


def _assessment_from(form: AssessmentForm, **fields) -> Assessment:
    return Assessment(
        administered_at=form.cleaned_data["administered_at"],
        items=form.cleaned_data["items"],
        difficulty=form.cleaned_data.get("difficulty", ""),
        submission_token=form.cleaned_data.get("submission_token"),
        **fields,
    )


def _columns(definition) -> list[tuple[int, str]]:
    """The grid's score columns, headed by their wording when every item shares it (PHQ-9's
    "Not at all" … "Nearly every day"); MADRS anchors differ by item and stay on each row."""
    first = definition.items[0].anchors
    shared = all(item.anchors == first for item in definition.items)
    return [(score, first[score] if shared else "") for score in first]


def _render_form(request, form: AssessmentForm, title: str, **extra) -> HttpResponse:
    definition = form.definition
    context = {
        "form": form, "definition": definition, "course": form.course,
        "patient": form.course.patient, "title": title,
        "bands": [(b.low, b.high, b.label) for b in definition.bands],
        "columns": _columns(definition), **extra,
    }
    return render(request, "assessments/form.html", context)


# /courses/<pk>/assessments/new/<instrument>/
@records_writer
@require_http_methods(["GET", "POST"])
def assessment_new(request: HttpRequest, pk: int, instrument: str) -> HttpResponse:
    course = get_course_for_user(request.user, pk, write=True)
    definition = _definition(instrument)
    form = AssessmentForm(
        request.POST or None, definition=definition, course=course,
        initial={"administered_at": timezone.localtime().replace(second=0, microsecond=0)},
    )
    if request.method == "POST" and form.is_valid():
        try:
            if already_saved(Assessment, form):
                raise IntegrityError
            assessment = actions.sign_assessment(
                request.user, _assessment_from(form, course=course, instrument=definition.code)
            )
        except IntegrityError:  # the same form sent twice (double click, retry)
            messages.info(request, f"This {definition.name} was already signed; not twice.")
        else:
            messages.success(
                request, f"{definition.name} signed: {assessment.total} ({assessment.band})."
            )
        return redirect("courses:detail", pk=course.pk)
    return _render_form(request, form, f"{definition.name} for {course.patient.full_name}")


# /assessments/<pk>/
@records_reader
def assessment_detail(request: HttpRequest, pk: int) -> HttpResponse:
    assessment = get_assessment_for_user(request.user, pk)
    record_view(request.user, assessment.course.patient, what=f"assessment {assessment.pk}")
    history = []  # the whole correction chain, oldest first
    node = assessment
    while node.replaces_id:
        node = node.replaces
    while node is not None:
        history.append(node)
        node = getattr(node, "corrected_by", None)
    items = []
    if assessment.items:
        items = [
            (item, score, item.anchors.get(score, ""))
            for item, score in zip(assessment.definition.items, assessment.items, strict=True)
        ]
    return render(
        request, "assessments/detail.html",
        {"assessment": assessment, "course": assessment.course,
         "patient": assessment.course.patient, "items": items, "history": history},
    )


@records_writer
@require_http_methods(["GET", "POST"])
def assessment_correct(request: HttpRequest, pk: int) -> HttpResponse:
    original = get_assessment_for_user(request.user, pk, write=True)
    if hasattr(original, "corrected_by"):
        messages.error(request, "This entry was already corrected: correct the latest version.")
        return redirect("assessments:detail", pk=original.corrected_by.pk)
    initial = {"administered_at": timezone.localtime(original.administered_at)}
    if original.items:
        initial.update({
            AssessmentForm.item_field(n): score for n, score in enumerate(original.items, 1)
        })
    initial["difficulty"] = original.difficulty
    form = CorrectionForm(
        request.POST or None, definition=original.definition, course=original.course,
        initial=initial,
    )
    if request.method == "POST" and form.is_valid():
        try:
            correction = actions.correct_assessment(
                request.user, original, _assessment_from(form), form.cleaned_data["reason"]
            )
        except (actions.AlreadyCorrected, IntegrityError):  # sent twice, or raced another
            messages.error(request, "This entry was already corrected: see the latest version.")
            return redirect("assessments:detail", pk=original.pk)
        messages.success(request, "Correction signed; the original stays in the history.")
        return redirect("assessments:detail", pk=correction.pk)
    title = (
        f"Correct {original.definition.name} of "
        f"{timezone.localtime(original.administered_at):%Y-%m-%d}"
    )
    return _render_form(request, form, title, original=original)
