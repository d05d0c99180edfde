from dataclasses import dataclass

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import FilteredRelation, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from accounts.access import (
    get_medication_for_user,
    get_patient_for_user,
    records_reader,
    records_writer,
)
from audit.log import snapshot
from clinical.catalogue import entries
from clinical.instruments import INSTRUMENTS
from clinical.vocab import Diagnosis, Phase, choices
from courses.evaluation import flags_with_decisions
from courses.models import Course
from courses.templatetags.clinical import flag_label, severity_class, status_class, status_label
from ketacare.fragments import (
    cached_record,
    cached_template,
    data_version,
    versions_read_with,
)
from ketacare.paths import path_maker
from ketacare.prepared import prepared
from patients import actions
from patients.forms import (
    ClassifyMedicationForm,
    MedicationForm,
    NewPatientForm,
    PatientForm,
    PriorTrialForm,
    StopMedicationForm,
    WeightForm,
)
from patients.models import Patient, search_words
from patients.record import read_patient_record

PAGE_SIZE = 25


# /patients/
@records_reader
def patient_list(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "")[:100]
    number = request.GET.get("page", "")[:20]
    # Cached until the next change to any record: see ketacare.fragments.
    rows = cached_template(request, "patients/_list.html", (query, number, data_version()),
                           lambda: _list_context(query, number))
    return render(request, "patients/list.html", {"query": query, "rows": rows})


@dataclass(slots=True)
class ListRow:
    """A row of the patient list, with what it shows worked out (no lookups while
    rendering): the patient, and their course not ended, if any."""

    pk: int
    last_name: str
    first_name: str
    record_number: str
    born: str
    diagnosis: str
    url: str
    course: dict | None


LIST_COLUMNS = ("pk", "last_name", "first_name", "record_number", "date_of_birth", "diagnosis",
                "open__pk", "open__phase", "open__started_on", "open__evaluation__status",
                "open__evaluation__provisional", "open__evaluation__flags__0")


# A search with a word the trigram indexes can find (three characters or more) reads at most
# this many of its matches' ids first, in name order: when that is all of them, they are the
# count and the pages (the indexes find them, then PostgreSQL sorts them). A search matching
# more, or of shorter words only (which no trigram finds, and which match many patients),
# counts its matches and walks the name index page by page, as the whole list does: quick
# when matches are dense.
MATCHES_READ = 500


def _list_context(query: str, number: str) -> dict:
    """Two queries: the matches (a search) or how many patients, and the page's rows with
    each patient's course not ended joined in (at most one, a constraint), only the columns
    shown. A search matching more than MATCHES_READ: three."""
    patients = Patient.objects.search(query)
    indexed = any(len(word) >= 3 for word in search_words(query))
    matches = list(patients.values_list("pk", flat=True)[:MATCHES_READ + 1]) if indexed else []
    if indexed and len(matches) <= MATCHES_READ:
        page = Paginator(matches, PAGE_SIZE).get_page(number)
        found = _with_open_course(Patient.objects.filter(pk__in=page.object_list)) \
            if page.object_list else []
    else:
        page = Paginator(patients, PAGE_SIZE).get_page(number)
        start = (page.number - 1) * PAGE_SIZE
        # The page's 25 ids first, from the name index, then only their rows joined: an
        # OFFSET over the joined rows built (and read the evaluation JSON of) every row
        # before the page, 30 ms deep in the list instead of 7.
        found = _with_open_course(_page_of(patients, start)) if query else prepared(
            ("patient list page", start, PAGE_SIZE),
            lambda: _with_open_course(_page_of(Patient.objects.all(), start)),
        ).rows()  # the whole list's pages: each compiled once per process
    patient_path, course_path = path_maker("patients:detail"), path_maker("courses:detail")
    page.object_list = [
        ListRow(pk, last, first, record_number, born.isoformat(),
                DIAGNOSES.get(diagnosis, diagnosis), patient_path(pk),
                _list_course(course_path, course_id, phase, started, status, provisional, flag)
                if course_id else None)
        for (pk, last, first, record_number, born, diagnosis,
             course_id, phase, started, status, provisional, flag) in found
    ]
    return {"page": page, "query": query}


def _page_of(patients, start: int):
    """The patients of the page from ``start`` on, in name order."""
    return Patient.objects.filter(pk__in=patients.values("pk")[start:start + PAGE_SIZE])


def _with_open_course(patients):
    return patients.annotate(
        open=FilteredRelation("courses", condition=~Q(courses__phase=Phase.ENDED))
    ).values_list(*LIST_COLUMNS)


DIAGNOSES = dict(choices(Diagnosis))
PHASES = dict(choices(Phase))


def _list_course(path, pk, phase, started, status, provisional, flag) -> dict:
    """The course cell: its phase and start, its status (as last evaluated) and its most
    severe flag (the engine sorts them critical first)."""
    return {
        "url": path(pk), "phase": PHASES.get(phase, phase), "started": started.isoformat(),
        "status": status_label(status) if status else "", "status_class": status_class(status),
        "provisional": provisional,
        "flag": flag and {"label": flag_label(flag["code"]), "message": flag["message"],
                          "class": severity_class(flag["severity"])},
    }


@records_writer
@require_http_methods(["GET", "POST"])
def patient_new(request: HttpRequest) -> HttpResponse:
    form = NewPatientForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        patient = actions.create_patient(
            request.user, form.save(commit=False), form.cleaned_data.get("weight_kg")
        )
        messages.success(request, f"Registered {patient.full_name}.")
        return redirect("patients:detail", pk=patient.pk)
    return render(request, "form_page.html", {"form": form, "title": "New patient"})


# /patients/<pk>/
@records_reader
def patient_detail(request: HttpRequest, pk: int) -> HttpResponse:
    patient = get_patient_for_user(request.user, pk, versions=True)
    actions.record_view(request.user, patient)
    today = timezone.localdate()
    # Cached under the versions of what it shows (read with the patient): see
    # ketacare.fragments.
    record = cached_record(request, "patients/_record.html", patient.pk, today,
                           lambda: _record_context(patient, today),
                           versions=versions_read_with(patient))
    return render(request, "patients/detail.html", {"patient": patient, "record": record})


def _record_context(patient: Patient, today) -> dict:
    record = read_patient_record(patient.pk)
    medications, courses, weights = record.medications, record.courses, record.weights
    current = next((course for course in courses if course.is_active), None)
    if current is not None:  # the current-course card: its open flags, decided ones left out
        flags = flags_with_decisions(current.evaluation or {}, record.decisions)
        current.open_flags = [flag for flag in flags if not flag["quiet"]]
    return {
        "patient": patient,
        "age": patient.age_on(today),
        "weights": weights,
        "current_weight": next((w for w in weights if w.measured_on <= today), None),
        "trials": record.trials,
        "active_medications": [m for m in medications if m.stopped_on is None
                               or m.stopped_on >= today],
        "past_medications": [m for m in medications if m.stopped_on and m.stopped_on < today],
        "courses": courses,
        "current": current,
        "instruments": INSTRUMENTS.values(),
        "class_choices": ClassifyMedicationForm.base_fields["drug_class"].choices,
    }


@records_writer
@require_http_methods(["GET", "POST"])
def patient_edit(request: HttpRequest, pk: int) -> HttpResponse:
    patient = get_patient_for_user(request.user, pk, write=True)
    back = _course_of(patient, request.GET.get("course", ""))
    before = snapshot(patient)
    form = PatientForm(request.POST or None, instance=patient)
    if request.method == "POST" and form.is_valid():
        changed = [name for name in form.changed_data if name != "version"]
        try:
            actions.update_patient(
                request.user, form.save(commit=False), before, changed,
                read_version=form.cleaned_data["version"],
            )
        except actions.StaleEdit:
            # Keep what they typed; the next save goes over the version now on record.
            fresh = get_patient_for_user(request.user, pk, write=True)
            theirs = {name: form.cleaned_data[name] for name in form.fields if name != "version"}
            data = request.POST.copy()
            data["version"] = fresh.version
            form = PatientForm(data, instance=fresh)
            differ = [
                f"{form.fields[name].label}: {getattr(fresh, name) or '—'}"
                for name, value in theirs.items() if getattr(fresh, name) != value
            ]
            form.is_valid()
            form.add_error(None, "Another clinician saved this patient while you were editing. "
                           "Your changes are below and not saved yet. The record now has "
                           f"{'; '.join(differ)}. Check and save again.")
        else:
            messages.success(request, "Patient details saved.")
            if back:  # opened from a course page (its self-report box): back there
                return redirect("courses:detail", pk=back.pk)
            return redirect("patients:detail", pk=patient.pk)
    return render(
        request, "form_page.html",
        {"form": form, "patient": patient, "title": f"Edit {patient.full_name}",
         "course": back},
    )


def _course_of(patient: Patient, value: str) -> Course | None:
    """``?course=`` names one of the patient's own courses, else nothing: no other page."""
    if value.isdigit() and len(value) < 12:
        return patient.courses.filter(pk=value).first()
    return None


def _patient_subform(request, pk, form_class, template_title, save):
    """GET shows the form; a valid POST calls ``save(patient, form)`` and returns to the
    patient page. Shared by the small forms hanging off a patient."""
    patient = get_patient_for_user(request.user, pk, write=True)
    form = form_class(request.POST or None, patient=patient)
    if request.method == "POST" and form.is_valid():
        save(patient, form)
        return redirect("patients:detail", pk=patient.pk)
    return render(
        request, "form_page.html",
        {"form": form, "patient": patient, "title": template_title,
         "catalogue": entries().values() if form_class is MedicationForm else None},
    )


@records_writer
@require_http_methods(["GET", "POST"])
def weight_new(request: HttpRequest, pk: int) -> HttpResponse:
    def save(patient, form):
        actions.record_weight(
            request.user, patient, form.cleaned_data["weight_kg"], form.cleaned_data["measured_on"]
        )
        messages.success(request, "Weight recorded.")

    return _patient_subform(request, pk, WeightForm, "Record weight", save)


@records_writer
@require_http_methods(["GET", "POST"])
def trial_new(request: HttpRequest, pk: int) -> HttpResponse:
    def save(patient, form):
        trial = form.save(commit=False)
        trial.patient = patient
        actions.add_prior_trial(request.user, trial)
        messages.success(request, f"Prior trial of {trial.drug} recorded.")

    return _patient_subform(request, pk, PriorTrialForm, "Prior antidepressant trial", save)


@records_writer
@require_http_methods(["GET", "POST"])
def medication_new(request: HttpRequest, pk: int) -> HttpResponse:
    def save(patient, form):
        medication = form.save(commit=False)
        medication.patient = patient
        actions.add_medication(request.user, medication)
        if medication.unclassified:
            messages.warning(
                request, f"{medication.name} is not in the catalogue: choose its class."
            )
        else:
            messages.success(
                request, f"{medication.name} added as {medication.get_drug_class_display()}."
            )

    return _patient_subform(request, pk, MedicationForm, "Add medication", save)


# /medications/<pk>/
@records_writer
@require_http_methods(["GET", "POST"])
def medication_stop(request: HttpRequest, pk: int) -> HttpResponse:
    medication = get_medication_for_user(request.user, pk, write=True)
    form = StopMedicationForm(
        request.POST or None, medication=medication,
        initial={"stopped_on": timezone.localdate()},
    )
    if request.method == "POST" and form.is_valid():
        actions.stop_medication(
            request.user, medication, form.cleaned_data["stopped_on"], form.cleaned_data["reason"]
        )
        messages.success(request, f"{medication.name} stopped; it stays in the history.")
        return redirect("patients:detail", pk=medication.patient_id)
    return render(
        request, "form_page.html",
        {"form": form, "patient": medication.patient, "title": f"Stop {medication.name}"},
    )


@records_writer
@require_POST
def medication_classify(request: HttpRequest, pk: int) -> HttpResponse:
    medication = get_medication_for_user(request.user, pk, write=True)
    form = ClassifyMedicationForm(request.POST)
    if form.is_valid():
        actions.classify_medication(request.user, medication, form.cleaned_data["drug_class"])
        messages.success(request, f"{medication.name} classified.")
    else:
        messages.error(request, f"Class: {form.errors['drug_class'][0]}")
    return redirect("patients:detail", pk=medication.patient_id)
