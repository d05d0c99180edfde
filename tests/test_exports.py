"""Clinic admins export course summaries in the background; nothing half-made is offered."""

import csv
import io
import zipfile
from datetime import date, timedelta
from decimal import Decimal
from unittest import mock

import pytest
from django.db import OperationalError, connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from audit.models import Action, AuditEvent
from courses.evaluation import refresh_evaluation
from courses.models import Course, FlagDecision
from exports import files, tasks
from exports.models import Export, ExportState
from exports.summaries import HEADER, select_courses, write_csv
from tests.conftest import sent
from tests.factories import AssessmentFactory, CourseFactory, PatientFactory, SessionFactory, at

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def export_root(settings, tmp_path):
    settings.EXPORT_ROOT = tmp_path / "exports"
    return settings.EXPORT_ROOT


def scored_course(started_on=date(2026, 2, 1), route="iv", current_items=(3,) * 9 + (2,),
                  **patient):
    course = CourseFactory(started_on=started_on, patient=PatientFactory(**patient))
    AssessmentFactory(course=course)
    SessionFactory(course=course, route=route)
    AssessmentFactory(course=course, items=list(current_items),
                      administered_at=at(started_on + timedelta(days=3), 12))
    refresh_evaluation(course)
    return course


@pytest.fixture
def ask(django_capture_on_commit_callbacks):
    """POST the export form as the page does; the task is queued when the request's
    transaction commits, and runs at once (eager Celery in tests)."""

    def post(client, data=None, url=None):
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(url or reverse("exports:list"), data or {})

    return post


def files_in(folder) -> list[str]:
    """What is left in the exports folder (which a build that never finished may not create)."""
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def rows_of(content: bytes) -> list[dict]:
    return list(csv.DictReader(io.StringIO(content.decode())))


def download(client, export) -> bytes:
    response = client.get(reverse("exports:download", args=[export.pk]))
    assert response.status_code == 200, response.status_code
    return b"".join(response.streaming_content)


def test_an_admin_exports_course_summaries_end_to_end(ask, as_user, clinic_admin, clinician):
    course = scored_course(record_number="MRN-EXP-1")
    FlagDecision.objects.create(
        course=course, code="TRD_NOT_VERIFIED", decision="declined", reason="records asked",
        flag_message="x", decided_by=clinician, decided_at=at(date(2026, 2, 5)),
    )
    client = as_user(clinic_admin)
    response = ask(client, {})
    export = Export.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse(
        "exports:detail", args=[export.pk]
    )
    # Eager Celery in tests: the build has already run.
    assert (export.state, export.done, export.total, export.attempts) == ("done", 1, 1, 1)
    page = client.get(response["Location"]).content.decode()
    assert "Ready" in page and reverse("exports:download", args=[export.pk]) in page

    [row] = rows_of(download(client, export))
    assert list(row) == HEADER
    assert row["record_number"] == "MRN-EXP-1" and row["course_id"] == str(course.pk)
    assert (row["madrs_baseline"], row["madrs_current"], row["madrs_reduction_pct"]) == (
        "36", "29", "19.4"
    )
    assert row["madrs_status"] == "non_response" and row["status"] == "non_response"
    assert (row["sessions_completed"], row["routes"]) == ("1", "iv")
    # Each highest dose names its route; an IV course has no highest fixed-route mg.
    assert (row["highest_dose_mg_per_kg"], row["highest_dose_mg_per_kg_route"]) == ("0.5", "iv")
    assert (row["highest_dose_mg"], row["highest_dose_mg_route"]) == ("", "")
    assert row["first_session"] == "2026-02-02" and row["provisional"] == "yes"
    assert "TRD_NOT_VERIFIED" in row["flags"].split(";")
    assert row["decisions"] == "2026-02-05 TRD_NOT_VERIFIED declined"
    # No names in an export that may travel to a payer.
    assert course.patient.last_name not in download(client, export).decode()

    asked = AuditEvent.objects.get(action=Action.EXPORT)
    assert asked.actor == clinic_admin and asked.object_id == str(export.pk)
    assert asked.after["include_pdfs"] is False
    assert AuditEvent.objects.filter(action=Action.DOWNLOAD, actor=clinic_admin).count() == 2


def test_filters_by_period_status_and_route(ask, as_user, clinic_admin):
    early = scored_course(started_on=date(2025, 6, 1))
    iv_non = scored_course()
    im_remission = scored_course(route="im", current_items=(1,) * 10)
    client = as_user(clinic_admin)

    def exported(**data):
        ask(client, data)
        return {int(r["course_id"]) for r in rows_of(download(client, Export.objects.first()))}

    assert exported() == {early.pk, iv_non.pk, im_remission.pk}
    assert exported(started_from="2026-01-01") == {iv_non.pk, im_remission.pk}
    assert exported(started_to="2025-12-31") == {early.pk}
    assert exported(statuses=["remission"]) == {im_remission.pk}
    assert exported(routes=["iv"]) == {early.pk, iv_non.pk}


@pytest.mark.parametrize("data", [
    {"routes": ["intranasal"]},
    {"started_from": "2026-03-01"},
    {"statuses": ["response"], "routes": ["iv"], "include_pdfs": "on"},
])
def test_filters_that_match_no_course_are_refused_at_the_form(ask, as_user, clinic_admin, data):
    """An export of nothing would be a header and nothing else: the form says so and nothing
    is queued."""
    scored_course()  # IV, non-response, started 2026-02-01
    response = ask(as_user(clinic_admin), data)
    assert response.status_code == 200
    assert response.context["form"].non_field_errors() == ["No course matches these filters."]
    assert "No course matches these filters." in response.content.decode()
    assert not Export.objects.exists() and not AuditEvent.objects.filter(action=Action.EXPORT)


def test_running_again_filters_that_now_match_nothing_runs_nothing(ask, as_user, clinic_admin):
    export = Export.objects.create(requested_by=clinic_admin, state=ExportState.EXPIRED,
                                   routes=["intranasal"])
    client = as_user(clinic_admin)
    response = ask(client, url=reverse("exports:again", args=[export.pk]))
    assert response["Location"] == reverse("exports:detail", args=[export.pk])
    assert Export.objects.count() == 1 and not AuditEvent.objects.filter(action=Action.EXPORT)
    page = client.get(response["Location"]).content.decode()
    assert "No course matches these filters now" in page


def test_filters_read_in_the_words_of_the_form(ask, as_user, clinic_admin):
    scored_course(route="im", current_items=(1,) * 10)
    client = as_user(clinic_admin)
    ask(client, {"started_from": "2026-01-01", "started_to": "2026-03-31",
                 "statuses": ["remission", "response"], "routes": ["iv", "im"]})
    export = Export.objects.get()
    words = ("started 2026-01-01 to 2026-03-31; status: Remission, Response; "
             "route: IV ketamine, IM ketamine")
    assert export.filters_display() == words
    for url in (reverse("exports:list"), reverse("exports:detail", args=[export.pk])):
        body = client.get(url).content.decode()
        assert words in body and "route iv" not in body and "remission, response" not in body
    asked = AuditEvent.objects.get(action=Action.EXPORT)
    assert asked.summary == f"asked for course summaries: {words}"
    assert asked.after["routes"] == ["iv", "im"]  # the record keeps the codes
    assert Export(started_to=date(2026, 3, 31)).filters_display() == (
        "started on or before 2026-03-31")
    assert Export(statuses=["retired_code"]).filters_display() == "status: retired_code"


def test_bad_filters_name_the_field_and_save_nothing(ask, as_user, clinic_admin):
    client = as_user(clinic_admin)
    response = ask(client, {
        "started_from": "2026-05-01", "started_to": "2026-01-01", "routes": ["teleport"],
    })
    body = response.content.decode()
    assert response.status_code == 200
    assert "The end of the period is before its start." in body
    assert "Select a valid choice. teleport is not one of the available choices." in body
    assert not Export.objects.exists() and not AuditEvent.objects.filter(action=Action.EXPORT)


def test_a_double_click_starts_one_export(ask, as_user, clinic_admin):
    scored_course()
    client = as_user(clinic_admin)
    token = "3f2b8e0c-8f5a-4d55-9a7a-0d8c3c3c1a11"
    first = ask(client, {"submission_token": token})
    second = ask(client, {"submission_token": token})
    assert first["Location"] == second["Location"] and Export.objects.count() == 1


def test_zip_holds_the_csv_and_each_patients_pdf(ask, as_user, clinic_admin):
    first, second = scored_course(record_number="MRN-Z1"), scored_course(record_number="MRN-Z2")
    client = as_user(clinic_admin)
    ask(client, {"include_pdfs": "on"})
    export = Export.objects.get()
    assert (export.state, export.total, export.courses, export.kind) == ("done", 4, 2, "zip")
    # Said as what they are, not "4 of 4" (two CSV rows and two PDFs).
    page = client.get(reverse("exports:detail", args=[export.pk])).content.decode()
    assert '<span id="export-count">2 courses, 2 reports</span>' in page
    response = client.get(reverse("exports:download", args=[export.pk]))
    assert response["Content-Disposition"].endswith('.zip"')
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    assert sorted(archive.namelist()) == [
        "course-summaries.csv",
        "reports/ketacare-report-MRN-Z1.pdf", "reports/ketacare-report-MRN-Z2.pdf",
    ]
    summaries = rows_of(archive.read("course-summaries.csv"))
    assert [r["course_id"] for r in summaries] == [str(first.pk), str(second.pk)]
    assert archive.read("reports/ketacare-report-MRN-Z1.pdf").startswith(b"%PDF")


@pytest.mark.parametrize("name", ["list", "detail", "status", "download", "again"])
def test_only_clinic_admins_reach_exports(as_user, clinic_admin, clinician, referrer, name):
    export = Export.objects.create(requested_by=clinic_admin, state=ExportState.FAILED)
    url = reverse(f"exports:{name}", args=[] if name == "list" else [export.pk])
    method = "post" if name == "again" else "get"
    assert getattr(as_user(clinician), method)(url).status_code == 403
    assert getattr(as_user(referrer), method)(url).status_code == 404
    assert getattr(as_user(None), method)(url).status_code == 302
    assert getattr(as_user(clinic_admin), method)(url).status_code in (200, 302, 404)


def test_status_reports_progress_for_the_page(as_user, clinic_admin):
    export = Export.objects.create(requested_by=clinic_admin, state=ExportState.RUNNING,
                                   total=200, courses=200, done=50)
    status = as_user(clinic_admin).get(reverse("exports:status", args=[export.pk])).json()
    assert status == {
        "state": "running", "state_label": "Running", "done": 50, "total": 200,
        "progress": "50 of 200 courses", "percent": 25, "error": "", "finished": False,
        "download_url": None,
    }


@pytest.mark.parametrize("include_pdfs,state,done,words", [
    (False, ExportState.QUEUED, 0, ""),  # not counted yet (total is None)
    (False, ExportState.RUNNING, 8, "8 of 14 courses"),
    (False, ExportState.DONE, 14, "14 courses"),
    (True, ExportState.RUNNING, 8, "8 of 14 courses, 0 of 12 reports"),
    (True, ExportState.RUNNING, 17, "14 courses, 3 of 12 reports"),
    (True, ExportState.DONE, 26, "14 courses, 12 reports"),
    (True, ExportState.FAILED, 20, "14 courses, 6 of 12 reports"),
])
def test_progress_says_what_is_counted(as_user, clinic_admin, include_pdfs, state, done, words):
    """A ZIP counts each course's row, then each patient's PDF report: "Ready 26 of 26" said
    neither."""
    counted = state != ExportState.QUEUED
    export = Export.objects.create(
        requested_by=clinic_admin, state=state, include_pdfs=include_pdfs, done=done,
        total=(26 if include_pdfs else 14) if counted else None,
        courses=14 if counted else None,
    )
    assert export.progress_display() == words
    status = as_user(clinic_admin).get(reverse("exports:status", args=[export.pk])).json()
    assert status["progress"] == words
    one = Export(include_pdfs=True, state=ExportState.DONE, total=2, courses=1, done=2)
    assert one.progress_display() == "1 course, 1 report"
    # Built before courses and reports were counted apart: at least not "28 of 28".
    older = Export(include_pdfs=True, state=ExportState.DONE, total=28, done=28)
    assert older.progress_display() == "28 course rows and reports"


def test_a_failing_build_is_retried_then_reported_and_keeps_nothing(ask, as_user, clinic_admin,
                                                                     export_root):
    scored_course()
    client = as_user(clinic_admin)
    with mock.patch.object(tasks, "write_csv", side_effect=OperationalError("db went away")):
        ask(client, {})
    export = Export.objects.get()
    assert export.state == ExportState.FAILED
    assert export.attempts == tasks.MAX_RETRIES + 1
    assert export.error.startswith("Failed after 4 attempts (OperationalError). Nothing was kept.")
    assert files_in(export_root) == []
    page = client.get(reverse("exports:detail", args=[export.pk])).content.decode()
    assert "Failed after 4 attempts" in page and "Run it again" in page
    assert client.get(reverse("exports:download", args=[export.pk])).status_code == 404

    again = ask(client, url=reverse("exports:again", args=[export.pk]))
    rerun = Export.objects.exclude(pk=export.pk).get()
    assert again["Location"] == reverse("exports:detail", args=[rerun.pk])
    assert rerun.state == ExportState.DONE and len(rows_of(download(client, rerun))) == 1


def test_a_bug_is_not_retried(ask, as_user, clinic_admin):
    scored_course()
    with mock.patch.object(tasks, "write_csv", side_effect=KeyError("oops")):
        ask(as_user(clinic_admin))
    export = Export.objects.get()
    assert (export.state, export.attempts) == (ExportState.FAILED, 1)
    assert "fault in KetaCare" in export.error


def stop_a_build_half_way(requested_by) -> Export:
    """Build an export of three courses whose worker shuts down after half a row."""
    for _ in range(3):
        scored_course()
    export = Export.objects.create(requested_by=requested_by)

    def die_after_a_row(courses, out, progress):
        out.write("record_number,half a row")
        raise SystemExit("worker shut down")

    with mock.patch.object(tasks, "write_csv", die_after_a_row), pytest.raises(SystemExit):
        tasks.build(export, attempt=1)
    export.refresh_from_db()
    assert export.state == ExportState.RUNNING and not export.is_ready
    return export


def test_a_build_stopped_half_way_leaves_no_file(clinic_admin, export_root):
    stop_a_build_half_way(clinic_admin)
    assert files_in(export_root) == []


def test_the_sweep_fails_stalled_exports_and_removes_their_files(clinic_admin, export_root,
                                                                 settings):
    """A worker killed outright (SIGKILL) runs no clean-up: whatever it left is swept away
    once the export has shown no progress for EXPORT_STALE_MINUTES, and never offered."""
    stale = timezone.now() - timedelta(minutes=settings.EXPORT_STALE_MINUTES + 1)
    export = Export.objects.create(requested_by=clinic_admin, state=ExportState.RUNNING,
                                   heartbeat_at=stale)
    alive = Export.objects.create(requested_by=clinic_admin, state=ExportState.RUNNING)
    export_root.mkdir()
    (export_root / f"{files.name_of(export)}.part").write_text("half")
    (export_root / files.name_of(export)).write_text("renamed but never marked done")
    assert not export.is_ready

    assert tasks.sweep_exports() == {"expired": 0, "stalled": 1}
    export.refresh_from_db()
    assert export.state == ExportState.FAILED and "Run it again" in export.error
    assert files_in(export_root) == []
    alive.refresh_from_db()
    assert alive.state == ExportState.RUNNING


def expire_and_sweep(client, export) -> None:
    """Once past its expiry an export cannot be downloaded, and the sweep deletes its file."""
    assert files.exists(export)
    Export.objects.filter(pk=export.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert client.get(reverse("exports:download", args=[export.pk])).status_code == 404
    assert tasks.sweep_exports() == {"expired": 1, "stalled": 0}
    export.refresh_from_db()
    assert export.state == ExportState.EXPIRED and not files.exists(export)


def test_exports_expire(ask, as_user, clinic_admin, export_root):
    scored_course()
    client = as_user(clinic_admin)
    ask(client, {})
    expire_and_sweep(client, Export.objects.get())
    assert files_in(export_root) == []


def test_a_redelivered_task_for_finished_work_does_nothing(ask, as_user, clinic_admin,
                                                          export_root):
    scored_course()
    ask(as_user(clinic_admin))
    export = Export.objects.get()
    written = export_root / files.name_of(export)
    before = written.stat().st_mtime_ns
    tasks.build_export.delay(str(export.pk))
    export.refresh_from_db()
    assert export.attempts == 1 and written.stat().st_mtime_ns == before


def test_export_queries_do_not_grow_with_courses():
    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            write_csv(select_courses(), io.StringIO())
        return len(sent(queries))

    scored_course()
    few = count()
    for _ in range(10):
        scored_course()
    assert count() == few


def test_cells_that_look_like_formulas_are_defused():
    scored_course(record_number="=HYPERLINK(1)")
    out = io.StringIO()
    write_csv(select_courses(), out)
    assert rows_of(out.getvalue().encode())[0]["record_number"] == "'=HYPERLINK(1)"


def test_each_highest_dose_says_which_route_it_belongs_to():
    from exports.summaries import summary_rows

    course = CourseFactory()
    SessionFactory(course=course, started_at=at(date(2026, 2, 2)), route="im",
                   dose_mg_per_kg=Decimal("0.75"), dose_mg=Decimal("60.0"))
    SessionFactory(course=course, started_at=at(date(2026, 2, 4)), route="intranasal",
                   dose_mg_per_kg=None, dose_mg=Decimal("84"))
    [(_, row)] = list(summary_rows(Course.objects.filter(pk=course.pk)))
    found = dict(zip(HEADER, row, strict=True))
    assert (found["highest_dose_mg_per_kg"], found["highest_dose_mg_per_kg_route"]) == (
        "0.75", "im")
    assert (found["highest_dose_mg"], found["highest_dose_mg_route"]) == ("84", "intranasal")
