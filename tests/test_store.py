"""Exports on an S3-compatible object store: a real one, moto's server on loopback, reached by
boto over HTTP (tests/objectstore.py). The local filesystem is never written."""

import io
import zipfile
from datetime import timedelta
from unittest import mock

import pytest
from django.urls import reverse
from django.utils import timezone

from audit.models import Action, AuditEvent
from exports import tasks
from exports.models import Export, ExportState
from tests.test_exports import (
    expire_and_sweep,
    rows_of,
    scored_course,
    stop_a_build_half_way,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_local_exports(settings, tmp_path):
    """A local export folder that must stay untouched: every byte goes to the store."""
    settings.EXPORT_ROOT = tmp_path / "exports"
    yield
    assert not settings.EXPORT_ROOT.exists()


@pytest.fixture
def ask(django_capture_on_commit_callbacks, as_user, clinic_admin):
    def post(data=None, url=None):
        client = as_user(clinic_admin)
        with django_capture_on_commit_callbacks(execute=True):
            client.post(url or reverse("exports:list"), data or {})
        return client

    return post


def key(export) -> str:
    return f"exports/{export.pk}.{export.kind}"


def test_an_export_is_written_to_the_store_and_streamed_through_the_access_check(
        s3_exports, ask, as_user, clinician, clinic_admin):
    course = scored_course(record_number="MRN-S3-1")
    client = ask()
    export = Export.objects.get()
    assert export.state == ExportState.DONE and export.file_name == f"{export.pk}.csv"
    assert s3_exports.keys() == [key(export)]
    stored = s3_exports.read(key(export))
    assert export.size_bytes == len(stored)

    response = client.get(reverse("exports:download", args=[export.pk]))
    assert response.status_code == 200 and response["Cache-Control"].startswith("no-store")
    assert response["Content-Disposition"].startswith("attachment; filename=")
    body = b"".join(response.streaming_content)
    assert body == stored and response["Content-Length"] == str(len(stored))
    [row] = rows_of(body)
    assert row["record_number"] == "MRN-S3-1" and row["course_id"] == str(course.pk)
    assert AuditEvent.objects.filter(action=Action.DOWNLOAD, actor=clinic_admin).count() == 1
    # The store's object is only reached through the app, and only by a clinic admin.
    assert as_user(clinician).get(reverse("exports:download", args=[export.pk])
                                  ).status_code == 403


def test_objects_are_private(s3_exports, ask):
    scored_course()
    ask({"include_pdfs": "on"})
    export = Export.objects.get()
    grants = s3_exports.client.get_object_acl(Bucket=s3_exports.bucket, Key=key(export))
    assert [g["Permission"] for g in grants["Grants"]] == ["FULL_CONTROL"]
    assert all(g["Grantee"].get("Type") == "CanonicalUser" for g in grants["Grants"])
    archive = zipfile.ZipFile(io.BytesIO(s3_exports.read(key(export))))
    assert "course-summaries.csv" in archive.namelist()


def test_nothing_is_under_the_final_name_until_the_file_is_complete(s3_exports, ask):
    """The store holds no object at all while the file is being written: it is uploaded, whole,
    under its final name once complete (as `.part` renamed into place on a filesystem)."""
    for _ in range(3):
        scored_course()
    seen = []
    real_update = tasks._update

    def watch(export_id, **fields):
        if "done" in fields and fields.get("state") != ExportState.DONE:
            seen.append(s3_exports.keys())
        real_update(export_id, **fields)

    with mock.patch.object(tasks, "_update", watch):
        ask()
    assert seen and all(keys == [] for keys in seen)  # every progress step: nothing stored
    assert s3_exports.keys() == [key(Export.objects.get())]


def test_a_build_that_fails_half_way_leaves_nothing_in_the_store(s3_exports, clinic_admin):
    stop_a_build_half_way(clinic_admin)
    assert s3_exports.keys() == []


def test_an_upload_the_store_refuses_is_retried_then_failed_keeping_nothing(s3_exports, ask):
    scored_course()
    s3_exports.client.delete_bucket(Bucket=s3_exports.bucket)  # the store says NoSuchBucket
    ask()
    export = Export.objects.get()
    assert export.state == ExportState.FAILED and export.attempts == tasks.MAX_RETRIES + 1
    assert export.error.startswith("Failed after 4 attempts (NoSuchBucket). Nothing was kept.")
    s3_exports.client.create_bucket(Bucket=s3_exports.bucket)
    assert s3_exports.keys() == []


def test_expiry_deletes_from_the_store(s3_exports, ask):
    scored_course()
    expire_and_sweep(ask(), Export.objects.get())
    assert s3_exports.keys() == []


def test_the_sweep_removes_what_a_dead_worker_uploaded_but_never_marked_done(s3_exports,
                                                                              clinic_admin,
                                                                              settings):
    stale = timezone.now() - timedelta(minutes=settings.EXPORT_STALE_MINUTES + 1)
    export = Export.objects.create(requested_by=clinic_admin, state=ExportState.RUNNING,
                                   heartbeat_at=stale)
    s3_exports.client.put_object(Bucket=s3_exports.bucket, Key=key(export), Body=b"whole")
    assert not export.is_ready
    assert tasks.sweep_exports() == {"expired": 0, "stalled": 1}
    assert s3_exports.keys() == []


def test_a_file_gone_from_the_store_is_a_404_not_a_500(s3_exports, ask):
    scored_course()
    client = ask()
    export = Export.objects.get()
    s3_exports.client.delete_object(Bucket=s3_exports.bucket, Key=key(export))
    assert client.get(reverse("exports:download", args=[export.pk])).status_code == 404
    assert not AuditEvent.objects.filter(action=Action.DOWNLOAD).exists()


def test_readyz_checks_the_store(s3_exports, client):
    assert client.get("/readyz").status_code == 200
    s3_exports.client.delete_bucket(Bucket=s3_exports.bucket)
    response = client.get("/readyz")
    assert response.status_code == 503 and response.content == b"not ready\n"
