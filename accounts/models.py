from django.contrib.auth.models import AbstractUser, UserManager
from django.db import models

from ketacare.validators import PHONE


class Role(models.TextChoices):
    CLINICIAN = "clinician", "Clinician"
    CLINIC_ADMIN = "clinic_admin", "Clinic admin"
    REFERRING_PROVIDER = "referring_provider", "Referring provider"


class KetaCareUserManager(UserManager):
    def create_superuser(self, username, email=None, password=None, **extra_fields):
        # The first account of a new clinic (`manage.py createsuperuser`) must be able to
        # create the others: it is a clinic admin, whose staff pages do exactly that.
        extra_fields.setdefault("role", Role.CLINIC_ADMIN)
        return super().create_superuser(username, email, password, **extra_fields)


class User(AbstractUser):
    """A member of staff or a referring provider; every account has exactly one role."""

    objects = KetaCareUserManager()

    role = models.CharField(max_length=20, choices=Role.choices, default=Role.CLINICIAN)
    credentials = models.CharField(
        max_length=50, blank=True, help_text="Shown after the name on signed entries, e.g. MD, NP"
    )
    # When the account last changed (not counting logins): part of the key of every cached
    # fragment that shows a signature (ketacare.fragments.with_record_versions).
    changed_at = models.DateTimeField(auto_now=True)
    # The monitoring clinician's contact on the REMS form (SPEC §8); the email is AbstractUser's.
    telephone = models.CharField(max_length=30, blank=True, validators=[PHONE])

    def save(self, *args, update_fields=None, **kwargs):
        # auto_now writes only when named: every save but a login's last_login names it.
        if update_fields is not None and set(update_fields) != {"last_login"}:
            update_fields = {*update_fields, "changed_at"}
        super().save(*args, update_fields=update_fields, **kwargs)

    @property
    def is_clinician(self) -> bool:
        return self.role == Role.CLINICIAN

    @property
    def is_clinic_admin(self) -> bool:
        return self.role == Role.CLINIC_ADMIN

    @property
    def is_referring_provider(self) -> bool:
        return self.role == Role.REFERRING_PROVIDER

    @property
    def signature(self) -> str:
        name = self.get_full_name() or self.username
        return f"{name}, {self.credentials}" if self.credentials else name
