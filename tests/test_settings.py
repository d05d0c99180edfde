"""Production refuses to start without a real secret key; development needs nothing set."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_check(**env) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "SECRET_KEY")}
    return subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env={**clean, **env},
        capture_output=True, text=True, timeout=60,
    )


def test_production_refuses_the_development_secret_key():
    result = run_check(DEBUG="0")
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_production_starts_with_a_real_secret_key():
    assert run_check(DEBUG="0", SECRET_KEY="x" * 64, ALLOWED_HOSTS="clinic.example").returncode == 0


def test_development_runs_with_nothing_set():
    assert run_check(DEBUG="1").returncode == 0


def test_static_files_collect_with_the_production_storage(settings, tmp_path):
    """With DEBUG off every page names its static files through the manifest; the collect that
    writes it must work (the vendored files name no source map that is not shipped)."""
    from django.core.management import call_command

    settings.STATIC_ROOT = tmp_path
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
    }
    call_command("collectstatic", interactive=False, verbosity=0)
    manifest = (tmp_path / "staticfiles.json").read_text()
    for name in ("favicon.svg", "css/report-print.css", "vendor/bootstrap/bootstrap.min.css",
                 "js/export-progress.js"):
        assert f'"{name}"' in manifest
