"""Safe file names: download names and ZIP member names come from one sanitiser
(ketacare.filenames), never straight from a record number, and headers use RFC 6266."""

import io
import zipfile
from pathlib import PurePosixPath

import pytest
from django.urls import reverse
from django.utils.http import content_disposition_header

from exports.models import Export
from ketacare.filenames import attachment, safe_filename
from patients.models import Patient
from tests.factories import PatientFactory

pytestmark = pytest.mark.django_db

# Record numbers as they might have been saved before they were restricted.
HOSTILE = [
    "A\r\nSet-Cookie: x=1", 'MRN"; filename="evil.exe', "/../../../../X", "..\\..\\boot.ini",
    "ÅSA-ñ-é-ö-漢字", "\x00\x07\x1b[31m", "." * 5, "", "M" * 300, "a/b\\c:d*e?f<g>h|i",
    "\u202egnp.exe", "con", " leading and trailing ",
]


@pytest.mark.parametrize("name", HOSTILE)
def test_a_hostile_name_comes_out_safe(name):
    safe = safe_filename(f"ketacare-report-{name}.pdf")
    assert len(safe) <= 100 and safe.endswith(".pdf")
    assert set(safe) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")
    assert ".." not in safe and not safe.startswith((".", "-"))
    assert PurePosixPath(safe).name == safe  # one path part, no folder
    assert safe_filename(safe) == safe


def test_names_keep_what_is_safe():
    assert safe_filename("ketacare-report-MRN_00.12-a.pdf") == "ketacare-report-MRN_00.12-a.pdf"
    assert safe_filename("Ésa Ñu.csv") == "Esa-Nu.csv"
    assert safe_filename("../../etc/passwd") == "etc-passwd"
    assert safe_filename("") == "download"
    assert safe_filename("x" * 300 + ".pdf") == "x" * 96 + ".pdf"


def test_headers_are_rfc_6266():
    assert attachment('a"b.pdf') == content_disposition_header(True, "a-b.pdf")
    assert attachment('a"b.pdf') == 'attachment; filename="a-b.pdf"'


@pytest.mark.parametrize("record_number", HOSTILE)
def test_every_pdf_download_of_a_hostile_record_number_works(as_user, clinician, referrer,
                                                             record_number):
    # Saved around the form, as an old record might be: the download must still work.
    patient = PatientFactory(referring_provider=referrer)
    # (PostgreSQL cannot store a NUL at all; the sanitiser's own test above has it.)
    Patient.objects.filter(pk=patient.pk).update(
        record_number=record_number.replace("\x00", "")[:32])
    for user, url in [(clinician, reverse("reports:record-pdf", args=[patient.pk])),
                      (referrer, reverse("reports:patient-pdf", args=[patient.pk]))]:
        response = as_user(user).get(url)
        assert response.status_code == 200, (record_number, response.status_code)
        header = response["Content-Disposition"]
        assert "\r" not in header and "\n" not in header and header.count('"') == 2
        name = header.split('filename="')[1].rstrip('"')
        assert name == safe_filename(name) and name.endswith(".pdf")


def test_zip_member_names_cannot_leave_the_folder(as_user, clinic_admin, settings, tmp_path,
                                                  django_capture_on_commit_callbacks):
    from tests.test_exports import scored_course

    settings.EXPORT_ROOT = tmp_path
    for record_number in ["/../../../../X", "a\nb", "../X", "ok", "ok"[:2] + "/"]:
        patient = scored_course().patient
        Patient.objects.filter(pk=patient.pk).update(record_number=record_number)
    client = as_user(clinic_admin)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("exports:list"), {"include_pdfs": "on"})
    export = Export.objects.get()
    response = client.get(reverse("exports:download", args=[export.pk]))
    assert response["Content-Disposition"].startswith('attachment; filename="ketacare-course')
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    names = archive.namelist()
    assert len(names) == len(set(names)) == 6
    for name in names:
        parts = PurePosixPath(name).parts
        assert ".." not in parts and not name.startswith("/"), name
        assert all(part == safe_filename(part) for part in parts), name
    assert "reports/ketacare-report-X.pdf" in names
