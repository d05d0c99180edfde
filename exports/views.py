"""Clinic admins export course summaries; a Celery worker builds the file while the page
shows its progress, then offers the download until it expires."""

from django.conf import settings
from django.contrib import messages
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.access import clinic_admin_required
from exports import files
from exports.actions import FILTER_FIELDS, record_download, request_export
from exports.forms import ExportForm
from exports.models import Export
from exports.summaries import select_courses
from ketacare.filenames import safe_filename
from ketacare.forms import already_saved

RECENT = 30


# /exports/
@clinic_admin_required
@require_http_methods(["GET", "POST"])
def export_list(request: HttpRequest) -> HttpResponse:
    form = ExportForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        export = already_saved(Export, form) or request_export(
            request.user, Export(**{name: form.cleaned_data[name] for name in FILTER_FIELDS},
                                 submission_token=form.cleaned_data["submission_token"]),
        )
        return redirect("exports:detail", export.pk)
    exports = Export.objects.select_related("requested_by")[:RECENT]
    return render(request, "exports/list.html", {
        "form": form, "exports": exports, "ttl_hours": settings.EXPORT_TTL_HOURS,
    })


def _get_export(pk) -> Export:
    return get_object_or_404(Export.objects.select_related("requested_by"), pk=pk)


def _status(export: Export) -> dict:
    return {
        "state": export.state,
        "state_label": export.get_state_display(),
        "done": export.done,
        "total": export.total,
        "progress": export.progress_display(),  # what the page shows: "14 courses, 3 of 12 reports"
        "percent": export.percent,
        "error": export.error,
        "finished": export.is_finished,
        "download_url": reverse("exports:download", args=[export.pk]) if export.is_ready
        else None,
    }


# /exports/<uuid>/
@clinic_admin_required
@require_GET
def export_detail(request: HttpRequest, pk) -> HttpResponse:
    export = _get_export(pk)
    return render(request, "exports/detail.html", {"export": export, "status": _status(export)})


# /exports/<uuid>/status/: polled by the detail page
@clinic_admin_required
@require_GET
@never_cache
def export_status(request: HttpRequest, pk) -> JsonResponse:
    return JsonResponse(_status(_get_export(pk)))


# /exports/<uuid>/download/
@clinic_admin_required
@require_GET
@never_cache
def export_download(request: HttpRequest, pk) -> FileResponse:
    export = _get_export(pk)
    handle = files.open_file(export) if export.is_ready else None
    if handle is None:
        raise Http404("This export is not ready, or has expired.")
    record_download(request.user, export)
    # Streamed from the store through this access check: the store is never public.
    response = FileResponse(handle, as_attachment=True,
                            filename=safe_filename(export.download_name))
    response["Content-Length"] = handle.size
    response.block_size = 64 * 1024  # fewer, larger reads from the store than Django's 4 KiB
    response["Cache-Control"] = "no-store"
    return response


# /exports/<uuid>/again/
@clinic_admin_required
@require_POST
def export_again(request: HttpRequest, pk) -> HttpResponse:
    """The same filters, as a new export (after a failure or once the file has expired)."""
    old = _get_export(pk)
    if not select_courses(**old.filters()).exists():
        messages.error(request, "No course matches these filters now: nothing was run.")
        return redirect("exports:detail", old.pk)
    export = request_export(
        request.user, Export(**{name: getattr(old, name) for name in FILTER_FIELDS})
    )
    return redirect("exports:detail", export.pk)
