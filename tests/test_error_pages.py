"""Honest error pages: a database outage is 503 with Retry-After, no page claims a rollback,
and a bad request gets a page that says what may have happened."""

from unittest import mock

import pytest
from django.contrib.sessions.exceptions import SessionInterrupted
from django.db import InterfaceError, OperationalError
from django.test import Client
from django.urls import reverse

from tests.conftest import verified_login

pytestmark = pytest.mark.django_db


@pytest.fixture
def served(settings, clinician):
    """A logged-in clinician's browser against the app as served (DEBUG off: the error
    pages, not Django's technical ones)."""
    settings.DEBUG = False
    client = Client(raise_request_exception=False)
    verified_login(client, clinician)
    return client


def assert_try_again_page(response):
    assert response.status_code == 503
    assert response["Retry-After"] == "30"
    body = response.content.decode()
    assert "Try again in a moment" in body and "cannot reach its database" in body
    assert "rolled back" not in body
    assert "no-store" in response["Cache-Control"]


def test_a_database_error_in_a_view_is_503_with_retry_after(served):
    with mock.patch("patients.views.data_version",
                    side_effect=OperationalError("server closed the connection unexpectedly")):
        assert_try_again_page(served.get(reverse("patients:list")))


def test_a_database_error_before_the_view_is_503_too(served):
    # The user is read by the middleware, before any view: the database is already gone.
    with mock.patch("django.contrib.auth.get_user",
                    side_effect=InterfaceError("connection already closed")):
        assert_try_again_page(served.get(reverse("patients:list")))


def test_any_other_fault_is_500_and_claims_no_rollback(served):
    with mock.patch("patients.views.data_version", side_effect=KeyError("bug")):
        response = served.get(reverse("patients:list"))
    assert response.status_code == 500 and "Retry-After" not in response
    body = response.content.decode()
    assert "Something went wrong" in body and "rolled back" not in body
    assert "whether it was saved" in body


def test_a_session_lost_after_a_save_gets_a_400_page_that_says_it_may_be_saved(served):
    with mock.patch("patients.views.data_version", side_effect=SessionInterrupted("gone")):
        response = served.get(reverse("patients:list"))
    assert response.status_code == 400
    body = response.content.decode()
    assert "This request could not be completed" in body and "may have been saved" in body
