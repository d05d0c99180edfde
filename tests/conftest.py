import pytest

from accounts.models import Role
from tests.factories import UserFactory


@pytest.fixture
def clinician(db):
    return UserFactory(role=Role.CLINICIAN, username="dr-test")


@pytest.fixture
def clinic_admin(db):
    return UserFactory(role=Role.CLINIC_ADMIN, username="admin-test")


@pytest.fixture
def referrer(db):
    return UserFactory(role=Role.REFERRING_PROVIDER, username="referrer-test")


@pytest.fixture
def as_user(client):
    """``as_user(user)`` logs the test client in as ``user`` (None: stays anonymous)."""

    def login(user):
        client.logout()
        if user is not None:
            client.force_login(user)
        return client

    return login


@pytest.fixture(autouse=True)
def fast_password_hasher(settings):
    # Production hashing is slow by design; tests only need it to work.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
