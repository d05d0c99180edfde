"""The clinic's REMS monitoring forms (SPEC §8): the queue, one form, its submission, printing
and the admins' CSV of a period. Clinicians and clinic admins read; only clinicians change."""

import csv

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from accounts.access import (
    clinic_admin_required,
    get_rems_form_session_for_user,
    records_reader,
    records_writer,
)
from clinic.models import ClinicSettings
from patients.actions import record_view
from rems import actions
from rems.filling import (
    FILTERS,
    fill,
    fill_all,
    filtered,
    forms_queryset,
    needs_filling,
    sessions_for_filter,
    with_form_data,
)
from rems.forms import PeriodForm, SubmissionForm, UndoForm

PAGE = 50  # forms on one page of the queue
PRINT_MAX = 100  # forms in one PDF


# /rems/
@records_reader
def queue(request: HttpRequest) -> HttpResponse:
    which = request.GET.get("show", "todo")
    if which not in FILTERS:
        which = "todo"
    today = timezone.localdate()
    number = request.GET.get("page", "")[:20]
    sessions = sessions_for_filter(which, today)
    if needs_filling(which):  # incomplete: every form not submitted is filled to tell
        page = Paginator(filtered(fill_all(with_form_data(sessions)), which, today),
                         PAGE).get_page(number)
        forms = list(page.object_list)
    else:  # SQL tells which and how many: only the page's forms are filled
        page = Paginator(sessions, PAGE).get_page(number)
        start = (page.number - 1) * PAGE
        forms = fill_all(with_form_data(sessions)[start:start + PAGE]) \
            if page.paginator.count else []
    for form in forms:
        form.row_class = form.urgency(today)
        form.missing_count = len(form.missing)
    return render(request, "rems/queue.html", {
        "forms": forms, "page": page, "which": which, "filters": FILTERS, "today": today,
        "which_label": FILTERS[which], "total": page.paginator.count,
    })


def _page(request, rems, submit=None, undo=None) -> HttpResponse:
    """The form's page; a refused submission or undo is shown again with its errors (as
    ``form``, like every refused form of the app)."""
    today = timezone.localdate()
    submit = submit or SubmissionForm(session=rems.session)
    undo = undo or UndoForm()
    return render(request, "rems/form.html", {
        "rems": rems, "state": rems.state(today), "urgency": rems.urgency(today),
        "submit": submit, "undo": undo, "form": undo if undo.is_bound else submit,
    })


def _form_of(request, pk: int, write: bool = False):
    session = get_rems_form_session_for_user(request.user, pk, write=write)
    return fill(session, ClinicSettings.load())


# /rems/<pk>/
@records_reader
def form_detail(request: HttpRequest, pk: int) -> HttpResponse:
    form = _form_of(request, pk)
    record_view(request.user, form.session.course.patient, what=f"REMS form {pk}")
    return _page(request, form)


# /rems/<pk>/submit/
@records_writer
@require_POST
def submit(request: HttpRequest, pk: int) -> HttpResponse:
    form = _form_of(request, pk, write=True)
    entry = SubmissionForm(request.POST, session=form.session, missing=form.missing)
    if entry.is_valid():
        try:
            actions.record_submission(request.user, form.session,
                                      entry.cleaned_data["submitted_on"],
                                      entry.cleaned_data["confirmation"])
        except actions.AlreadySubmitted:
            messages.info(request, "This form was already marked submitted.")
        else:
            messages.success(request, "REMS form marked submitted.")
        return redirect("rems:form", pk=pk)
    return _page(request, form, submit=entry)


# /rems/<pk>/undo/
@records_writer
@require_POST
def undo(request: HttpRequest, pk: int) -> HttpResponse:
    form = _form_of(request, pk, write=True)
    entry = UndoForm(request.POST)
    if form.submission is None:
        messages.info(request, "This form is not marked submitted.")
        return redirect("rems:form", pk=pk)
    if entry.is_valid():
        actions.undo_submission(request.user, form.submission, entry.cleaned_data["reason"])
        messages.success(request, "Submission undone: the form is back in the queue.")
        return redirect("rems:form", pk=pk)
    return _page(request, form, undo=entry)


def _pdf(request: HttpRequest, forms: list, filename: str) -> HttpResponse:
    from django.contrib.staticfiles import finders
    from weasyprint import CSS, HTML

    for form in forms:
        record_view(request.user, form.session.course.patient,
                    what=f"REMS form {form.session.pk} PDF")
    html = render_to_string("rems/print.html", {"forms": forms})
    pdf = HTML(string=html).write_pdf(stylesheets=[
        CSS(filename=finders.find("css/report-print.css")),
        CSS(filename=finders.find("css/rems-print.css")),
    ])
    response = HttpResponse(pdf, content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    return response


# /rems/<pk>/pdf/
@records_reader
def form_pdf(request: HttpRequest, pk: int) -> HttpResponse:
    return _pdf(request, [_form_of(request, pk)], f"rems-form-{pk}.pdf")


# /rems/print/?form=1&form=2
@records_reader
def print_set(request: HttpRequest) -> HttpResponse:
    ids = {int(v) for v in request.GET.getlist("form")
           if v.isascii() and v.isdigit() and len(v) < 12}  # not "²", which int() refuses
    if not ids:
        messages.error(request, "Choose the forms to print.")
        return redirect("rems:queue")
    sessions = forms_queryset().filter(pk__in=sorted(ids)[:PRINT_MAX])
    forms = fill_all(sessions)
    if not forms:
        raise Http404
    return _pdf(request, forms, "rems-forms.pdf")


# /rems/export/
@clinic_admin_required
@require_http_methods(["GET"])
def export(request: HttpRequest) -> HttpResponse:
    period = PeriodForm(request.GET or None)
    if not period.is_valid():
        return render(request, "rems/export.html", {"period": period})
    start, end = period.cleaned_data["start"], period.cleaned_data["end"]
    sessions = forms_queryset().filter(
        started_at__date__gte=start, started_at__date__lte=end)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="rems-forms-{start}-{end}.csv"'
    response["Cache-Control"] = "no-store"
    writer = csv.writer(response)
    writer.writerow(["session", "record number", "session date", "due on", "status",
                     "complete", "missing", "submitted on", "confirmation number"])
    today = timezone.localdate()
    for form in fill_all(sessions):
        s = form.submission
        writer.writerow([
            form.session.pk, form.session.course.patient.record_number,
            timezone.localdate(form.session.started_at), form.due_on, form.state(today),
            "yes" if form.complete else "no", "; ".join(i.label for i in form.missing),
            s.submitted_on if s else "", s.confirmation if s else "",
        ])
    return response
