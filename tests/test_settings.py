"""Production refuses to start without a real secret key; development needs nothing set."""

import json
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


def database_settings(**env) -> dict:
    """The default database's settings as a process with ``env`` builds them."""
    clean = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DB_CONN_MAX_AGE")}
    code = ("import json, django; from django.conf import settings; django.setup(); "
            "db = settings.DATABASES['default']; "
            "print(json.dumps([db['CONN_MAX_AGE'], db['CONN_HEALTH_CHECKS']]))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, timeout=60, env={**clean, "DEBUG": "1",
                                                        "DJANGO_SETTINGS_MODULE":
                                                        "ketacare.settings", **env})
    assert result.returncode == 0, result.stderr
    return dict(zip(["max_age", "checked"], json.loads(result.stdout), strict=True))


def test_web_processes_keep_their_database_connection_and_check_it_before_reuse():
    assert database_settings() == {"max_age": 60, "checked": True}
    url = "postgres://postgres@127.0.0.1:5432/x"
    assert database_settings(DATABASE_URL=url)["max_age"] == 60
    # The URL's own setting wins; DB_CONN_MAX_AGE=0 is a connection per request.
    assert database_settings(DATABASE_URL=url + "?conn_max_age=5")["max_age"] == 5
    assert database_settings(DB_CONN_MAX_AGE="0") == {"max_age": 0, "checked": True}
