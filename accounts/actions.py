"""State changes to staff accounts (issue 4). Each is atomic and writes its audit row (STYLE 3).

Passwords and their hashes never reach the audit trail: account snapshots name their fields
(:data:`ACCOUNT_FIELDS`), and a password reset is recorded without before or after.

Two rules keep the clinic administrable: an admin cannot demote or deactivate themselves, and
the last active clinic admin cannot be demoted or deactivated. Both are checked with the active
admins' rows locked, so two admins demoting each other at the same moment cannot both succeed.
"""

from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.models import Session
from django.db.models import F
from django.utils import timezone
from django_otp import devices_for_user

from accounts.models import Role, User
from accounts.twofactor import TWO_FACTOR_ROLES, usable_device
from audit.log import audited, record, snapshot
from audit.models import Action
from patients.models import Patient

# What an account's audit rows show: never "password" (its hash) nor "last_login".
# Every field a staff form edits is here (tests/test_staff.py checks): an edit's before and
# after are read by these names.
ACCOUNT_FIELDS = [
    "username", "first_name", "last_name", "email", "telephone", "credentials", "role",
    "is_active",
]
REPLACE_LABEL = "Replace their current referring provider"


class StaffChangeRefused(Exception):
    """The change would break a rule; the message says which, in words for the admin."""


class StaleAccountEdit(Exception):
    """Another admin changed the account after this edit began: saving would undo their
    change without anyone seeing it."""


def version_of(user: User) -> str:
    """What an edit form carries to detect a change made since it was read: when the account
    last changed (``User.changed_at``; a login does not move it)."""
    return user.changed_at.isoformat() if user.changed_at else ""


def _lock_at_version(user: User, read_version: str | None) -> None:
    """Lock the account's row; refuse if it changed since ``read_version`` was read."""
    # FOR NO KEY UPDATE: edits of the account wait for each other, but not a page view's audit
    # row, whose foreign key to its actor only reads the key (FOR KEY SHARE, at its commit).
    current = User.objects.select_for_update(no_key=True).get(pk=user.pk)
    if read_version is not None and version_of(current) != read_version:
        raise StaleAccountEdit


def clear_lockouts(user: User) -> int:
    """End django-axes' lockouts (and failed-login counts) of the account's user name, from
    every address; returns how many records (one per address) were removed."""
    from axes.utils import reset

    return reset(username=user.username)


def _lockouts_cleared(count: int) -> str:
    # django-axes keeps one record per user name and address, with its count of failures.
    return (f"; failed logins (and any lockout) from {count} address"
            f"{'' if count == 1 else 'es'} cleared") if count else ""


def end_sessions(user: User) -> int:
    """Delete every session logged in as ``user`` (database sessions, the configured engine);
    returns how many. Django keeps the user's id only inside each session's encoded data, so
    each unexpired session is decoded: a clinic has few."""
    ended = [
        session.pk
        for session in Session.objects.filter(expire_date__gt=timezone.now()).iterator()
        if session.get_decoded().get(SESSION_KEY) == str(user.pk)
    ]
    Session.objects.filter(pk__in=ended).delete()
    return len(ended)


def _sessions_ended(count: int) -> str:
    return f"{count} session{'' if count == 1 else 's'} ended"


def _check_admins_remain(actor: User, user: User, doing: str) -> None:
    """Refuse ``doing`` (demote, deactivate) to oneself or to the last active clinic admin."""
    if user.pk == actor.pk:
        raise StaffChangeRefused(
            f"You cannot {doing} your own account: ask another clinic admin."
        )
    if user.role != Role.CLINIC_ADMIN or not user.is_active:
        return
    # Locks the active admins' rows until the transaction ends (a no-op on SQLite, which
    # serializes writers anyway).
    admins = list(
        User.objects.select_for_update(no_key=True)  # as _lock_at_version
        .filter(role=Role.CLINIC_ADMIN, is_active=True)
        .values_list("pk", flat=True)
    )
    if not [pk for pk in admins if pk != user.pk]:
        raise StaffChangeRefused(
            f"{user.signature} is the last active clinic admin: make another account a clinic "
            f"admin first, or the clinic could no longer manage its staff."
        )


@audited()
def create_user(actor: User, user: User) -> User:
    """Save a new account; its password is already set (hashed) by the form."""
    user.save()
    record(actor, Action.CREATE, user, after=snapshot(user, ACCOUNT_FIELDS),
           summary=f"account created as {user.get_role_display()}")
    return user


@audited()
def update_user(actor: User, user: User, before: dict, changed: list[str],
                read_version: str | None = None) -> User:
    """Save the changed details (name, email, credentials), but only over the version of the
    account the form was read at (:class:`StaleAccountEdit` otherwise)."""
    if not changed:
        return user
    _lock_at_version(user, read_version)
    user.save(update_fields=changed)
    record(actor, Action.UPDATE, user, before={k: before[k] for k in changed},
           after=snapshot(user, changed))
    return user


@audited()
def change_role(actor: User, user: User, role: str, read_version: str | None = None) -> User:
    if role == user.role:
        return user
    _lock_at_version(user, read_version)
    if user.role == Role.CLINIC_ADMIN:
        _check_admins_remain(actor, user, "demote")
    if user.role == Role.REFERRING_PROVIDER:
        linked = Patient.objects.filter(referring_provider=user).count()
        if linked:
            # Their patients' records would then name someone who is not a referring
            # provider, which the patient form refuses.
            raise StaffChangeRefused(
                f"{user.signature} is the referring provider of {linked} patient"
                f"{'' if linked == 1 else 's'}: unlink them first."
            )
    before = snapshot(user, ["role"])
    user.role = role
    user.save(update_fields=["role"])
    record(actor, Action.ROLE_CHANGE, user, before=before, after=snapshot(user, ["role"]),
           summary=f"role changed to {user.get_role_display()}")
    return user


@audited()
def deactivate_user(actor: User, user: User) -> User:
    """The account can no longer log in and its sessions end. Everything it signed, and a
    referring provider's patient links, stay as they are."""
    if not user.is_active:
        return user
    _check_admins_remain(actor, user, "deactivate")
    user.is_active = False
    user.save(update_fields=["is_active"])
    ended = end_sessions(user)
    record(actor, Action.DEACTIVATE, user, before={"is_active": True},
           after={"is_active": False}, summary=f"deactivated; {_sessions_ended(ended)}")
    return user


@audited()
def reactivate_user(actor: User, user: User) -> User:
    if user.is_active:
        return user
    user.is_active = True
    user.save(update_fields=["is_active"])
    cleared = clear_lockouts(user)
    record(actor, Action.REACTIVATE, user, before={"is_active": False},
           after={"is_active": True}, summary=f"reactivated{_lockouts_cleared(cleared)}")
    return user


@audited()
def reset_password(actor: User, user: User) -> User:
    """Save the password the form set on ``user`` and end their sessions. The audit row says
    that it changed, never what it is."""
    if user.pk == actor.pk:
        raise StaffChangeRefused("Change your own password from the Password button instead.")
    user.save(update_fields=["password"])
    ended = end_sessions(user)
    cleared = clear_lockouts(user)  # a locked-out user is why an admin sets a new password
    record(actor, Action.PASSWORD_RESET, user,
           summary=f"new password set by a clinic admin; {_sessions_ended(ended)}"
                   f"{_lockouts_cleared(cleared)}")
    return user


def two_factor_reset_refusal(user: User) -> str:
    """Why resetting ``user``'s two-factor would mean nothing, or "" when it would not: their
    role logs in without it, or they have no authenticator to lose (they are asked to set one
    up at their next login anyway). The account page offers the reset only when this is "";
    :func:`reset_two_factor` checks again."""
    if user.role not in TWO_FACTOR_ROLES:
        return (f"{user.signature} is a {user.get_role_display().lower()}: that role logs in "
                "without two-factor authentication, so there is nothing to reset.")
    if usable_device(user) is None:
        return (f"{user.signature} has no authenticator set up, so there is nothing to reset: "
                "they are asked to set one up at their next login.")
    return ""


@audited()
def reset_two_factor(actor: User, user: User) -> int:
    """Remove the user's authenticators and end their sessions: they enrol a new one at their
    next login. Returns how many were removed."""
    if user.pk == actor.pk:
        raise StaffChangeRefused(
            "You cannot reset your own two-factor authentication: ask another clinic admin."
        )
    if reason := two_factor_reset_refusal(user):
        raise StaffChangeRefused(reason)
    devices = list(devices_for_user(user, confirmed=None))
    for device in devices:
        device.delete()
    ended = end_sessions(user)
    record(actor, Action.TWO_FACTOR_RESET, user, before={"authenticators": len(devices)},
           after={"authenticators": 0},
           summary=f"two-factor reset; {_sessions_ended(ended)}")
    return len(devices)


def _set_referrer(patient: Patient, referrer: User | None) -> None:
    # The version moves on, so a clinician's edit begun before this is refused instead of
    # silently putting the old referring provider back.
    Patient.objects.filter(pk=patient.pk).update(
        referring_provider=referrer, version=F("version") + 1, updated_at=timezone.now()
    )
    patient.refresh_from_db(fields=["referring_provider", "version", "updated_at"])


def link_refusal(referrer: User, patient: Patient, *, replace: bool = False) -> str:
    """Why ``patient`` cannot be linked to ``referrer``, or "" when it can. The form shows the
    reason next to its field; :func:`link_patient` checks again when it saves."""
    if referrer.role != Role.REFERRING_PROVIDER:
        return (f"{referrer.signature} is a {referrer.get_role_display().lower()}: only "
                "referring providers can be linked to patients.")
    current = patient.referring_provider
    if current is not None and current.pk == referrer.pk:
        return f"{patient} is already linked to {referrer.signature}."
    if current is not None and not replace:
        return (f"{patient} is already linked to {current.signature} ({current.username}): "
                f"tick “{REPLACE_LABEL}” to link them to {referrer.signature} instead.")
    return ""


@audited()
def link_patient(actor: User, referrer: User, patient: Patient, *, replace: bool = False
                 ) -> Patient:
    """Make ``referrer`` the patient's referring provider. A patient already linked to another
    referring provider is only moved when ``replace`` is given."""
    # Read again, locked: the form checked a state that may have changed since.
    # (of=self: PostgreSQL cannot lock the nullable side of the join.)
    patient = (
        Patient.objects.select_for_update(of=("self",)).select_related("referring_provider")
        .get(pk=patient.pk)
    )
    if reason := link_refusal(referrer, patient, replace=replace):
        raise StaffChangeRefused(reason)
    current = patient.referring_provider
    _set_referrer(patient, referrer)
    summary = f"linked to {referrer.username}"
    if current is not None:
        summary += f", replacing {current.username}"
    record(actor, Action.LINK, patient, patient_id=patient.pk,
           before={"referring_provider": current.pk if current else None},
           after={"referring_provider": referrer.pk}, summary=summary)
    return patient


@audited()
def unlink_patient(actor: User, referrer: User, patient: Patient) -> Patient:
    patient = Patient.objects.select_for_update().get(pk=patient.pk)
    if patient.referring_provider_id != referrer.pk:
        raise StaffChangeRefused(f"{patient} is not linked to {referrer.signature}.")
    _set_referrer(patient, None)
    record(actor, Action.UNLINK, patient, patient_id=patient.pk,
           before={"referring_provider": referrer.pk}, after={"referring_provider": None},
           summary=f"unlinked from {referrer.username}")
    return patient
