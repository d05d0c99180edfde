"""A referring provider reads and downloads a report; a clinic admin exports course summaries
from click to download, and watches a running export's progress."""

import csv
import io
import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.utils import timezone
from playwright.sync_api import expect
from pypdf import PdfReader

from exports import files
from exports.models import Export, ExportState
from exports.summaries import select_courses
from patients.models import Patient
from tests.browser.conftest import log_in

pytestmark = pytest.mark.browser


def test_referrer_reads_the_report_and_downloads_the_pdf(page, demo_clinic, live_server):
    log_in(page, "referrer1")
    expect(page.get_by_role("heading", name="Your referrals")).to_be_visible()
    page.get_by_role("link", name="Hale, Martin").click()
    heading = page.get_by_role("heading", name=re.compile("Course report: Martin Hale"))
    expect(heading).to_be_visible()
    expect(page.locator("#course-status")).to_have_text("Non-response")
    expect(page.locator("svg").first).to_be_visible()
    # Read-only: the logout button is the only form, and no Accept/Decline or Log session.
    assert page.locator("form").count() == 1
    expect(page.get_by_role("link", name="Accept…")).to_have_count(0)

    with page.expect_download() as info:
        page.get_by_role("link", name="Download PDF").click()
    download = info.value
    assert download.suggested_filename == "ketacare-report-DEMO-001.pdf"
    text = "".join(p.extract_text() for p in PdfReader(download.path()).pages)
    assert "Martin Hale" in text and "Non-response" in text

    # Another referrer's patient is not there to find.
    other = Patient.objects.exclude(referring_provider__username="referrer1").first()
    response = page.goto(f"{live_server.url}/reports/patients/{other.pk}/")
    assert response.status == 404


def test_admin_exports_from_click_to_download(page, demo_clinic, settings, tmp_path):
    settings.EXPORT_ROOT = tmp_path
    log_in(page, "admin")
    page.get_by_role("link", name="Exports").click()
    page.get_by_label("IV ketamine").check()
    page.get_by_role("button", name="Start export").click()
    # The build ran as the form was saved (Celery is eager here); the page offers the file.
    expect(page.locator("#export-state")).to_have_text("Ready")
    with page.expect_download() as info:
        page.get_by_role("link", name="Download CSV").click()
    rows = list(csv.DictReader(io.StringIO(Path(info.value.path()).read_text())))
    expected = select_courses(routes=["iv"])
    assert sorted(int(r["course_id"]) for r in rows) == sorted(c.pk for c in expected)
    assert rows and all("iv" in r["routes"].split(";") for r in rows)
    assert "DEMO-001" in {r["record_number"] for r in rows}


def test_the_export_page_follows_a_running_build(page, demo_clinic, settings, tmp_path):
    """The page polls while a worker builds the file, then offers it without a reload."""
    settings.EXPORT_ROOT = tmp_path
    admin = demo_clinic["admin"]
    export = Export.objects.create(requested_by=admin, state=ExportState.RUNNING, total=8,
                                   done=2)
    log_in(page, "admin")
    page.goto(f"/exports/{export.pk}/")
    expect(page.locator("#export-count")).to_have_text("2 of 8 courses")
    expect(page.get_by_role("link", name="Download CSV")).to_be_hidden()

    Export.objects.filter(pk=export.pk).update(done=6)
    expect(page.locator("#export-count")).to_have_text("6 of 8 courses")
    expect(page.locator("#export-progress")).to_have_attribute("value", "75")

    files.storage().save(files.name_of(export), ContentFile(b"record_number\n"))
    Export.objects.filter(pk=export.pk).update(
        state=ExportState.DONE, done=8, expires_at=timezone.now() + timedelta(hours=1),
    )
    expect(page.locator("#export-state")).to_have_text("Ready")
    expect(page.get_by_role("link", name="Download CSV")).to_be_visible()
    expect(page.locator("#export-count")).to_have_text("8 courses")
