"""Who may see and change what: the one place access is decided (STYLE 2).

Roles:
- clinician: reads and changes the clinical record;
- clinic admin: reads the clinical record (audits, payers); changing it is refused (403);
- referring provider: none of the clinical screens exist for them (404, so not even the
  existence of a record leaks); their read-only reports are separate views.

Every view that touches a patient's data gets its object through one of the ``get_*_for_user``
functions; no view queries a clinical model by id itself.
"""

from collections.abc import Callable
from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404

from accounts.models import Role, User
from assessments.models import Assessment
from clinic.models import Appointment
from courses.models import Course, TreatmentSession
from ketacare.fragments import with_record_versions
from ketacare.prepared import Prepared
from patients.models import Medication, Patient
from selfreport.models import Plan

READ_ROLES = frozenset({Role.CLINICIAN, Role.CLINIC_ADMIN})
WRITE_ROLES = frozenset({Role.CLINICIAN})


def can_read_records(user) -> bool:
    return user.is_authenticated and user.is_active and user.role in READ_ROLES


def can_write_records(user) -> bool:
    return user.is_authenticated and user.is_active and user.role in WRITE_ROLES


def _check(user, write: bool) -> None:
    if not can_read_records(user):
        raise Http404
    if write and not can_write_records(user):
        raise PermissionDenied("Only clinicians can change the clinical record.")


def any_staff(view: Callable) -> Callable:
    """Login required; every active role, referring providers included (pages with no patient
    data, such as the rules and their sources)."""

    @login_required
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_active:
            raise Http404
        return view(request, *args, **kwargs)

    return wrapper


def records_reader(view: Callable) -> Callable:
    """Login required; clinicians and clinic admins only."""

    @login_required
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        _check(request.user, write=False)
        return view(request, *args, **kwargs)

    return wrapper


def records_writer(view: Callable) -> Callable:
    """Login required; clinicians only (403 for a clinic admin, 404 for anyone else)."""

    @login_required
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        _check(request.user, write=True)
        return view(request, *args, **kwargs)

    return wrapper


def _check_clinic_admin(user) -> None:
    _check(user, write=False)
    if user.role != Role.CLINIC_ADMIN:
        raise PermissionDenied("Only clinic admins can do this.")


def clinic_admin_required(view: Callable) -> Callable:
    """Login required; clinic admins only (403 for clinicians, 404 for anyone else).

    The staff account pages (``accounts/staff.py``) use it on every view.
    """

    @login_required
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        _check_clinic_admin(request.user)
        return view(request, *args, **kwargs)

    return wrapper


def get_staff_member_for_user(user, pk: int) -> User:
    """Any account, active or not, for a clinic admin managing staff (403 for clinicians,
    404 for anyone else)."""
    _check_clinic_admin(user)
    try:
        return User.objects.get(pk=pk)
    except User.DoesNotExist:
        raise Http404 from None


def _patient(pk: int):
    return Patient.objects.select_related("referring_provider").filter(pk=pk)


_PATIENT = Prepared(_patient, pk=int)
# A page of the patient's record reads its versions with it (ketacare.fragments).
_PATIENT_PAGE = Prepared(lambda pk: with_record_versions(_patient(pk), "pk"), pk=int)


def get_patient_for_user(user, pk: int, *, write: bool = False,
                         versions: bool = False) -> Patient:
    """The patient; with ``versions``, the versions of their record too
    (ketacare.fragments.versions_read_with), for a page that shows it."""
    _check(user, write)
    return _one(_PATIENT_PAGE if versions else _PATIENT, pk)


# With its patient and plan (clinic.models.Plan): the course page shows them. Compiled once
# (ketacare.prepared): every course page and form reads it.
def _course(pk: int):
    return Course.objects.select_related("patient", "plan").filter(pk=pk)


_COURSE = Prepared(_course, pk=int)
_COURSE_PAGE = Prepared(lambda pk: with_record_versions(_course(pk)), pk=int)


def get_course_for_user(user, pk: int, *, write: bool = False,
                        versions: bool = False) -> Course:
    """The course; with ``versions``, the versions of its patient's record too
    (ketacare.fragments.versions_read_with), for a page that shows it."""
    _check(user, write)
    return _one(_COURSE_PAGE if versions else _COURSE, pk)


def _one(query: Prepared, pk: int, **values):
    """The row of ``pk`` read by ``query`` (a Prepared filter on ``pk`` and ``values``), else
    a 404."""
    found = query.objects(pk=pk, **values) if 0 < pk < 2**63 else None  # beyond any id: none
    if not found:
        raise Http404
    return found[0]


def get_session_for_user(user, pk: int, *, write: bool = False) -> TreatmentSession:
    _check(user, write)
    try:
        return TreatmentSession.objects.select_related(
            "course__patient", "clinician", "void"
        ).get(pk=pk)
    except TreatmentSession.DoesNotExist:
        raise Http404 from None


def get_assessment_for_user(user, pk: int, *, write: bool = False) -> Assessment:
    _check(user, write)
    try:
        return Assessment.objects.select_related("course__patient", "scored_by").get(pk=pk)
    except Assessment.DoesNotExist:
        raise Http404 from None


def get_appointment_for_user(user, pk: int, *, write: bool = False) -> Appointment:
    _check(user, write)
    try:
        return Appointment.objects.select_related("course__patient").get(pk=pk)
    except Appointment.DoesNotExist:
        raise Http404 from None


def get_medication_for_user(user, pk: int, *, write: bool = False):
    _check(user, write)
    try:
        return Medication.objects.select_related("patient").get(pk=pk)
    except Medication.DoesNotExist:
        raise Http404 from None


def get_plan_for_user(user, pk: int, *, write: bool = False) -> Plan:
    """A course's self-report plan: clinicians manage them, admins read them, referring
    providers never see them."""
    _check(user, write)
    try:
        return Plan.objects.select_related("course__patient").get(pk=pk)
    except Plan.DoesNotExist:
        raise Http404 from None


def _check_referrer(user) -> None:
    if not (user.is_authenticated and user.is_active and user.role == Role.REFERRING_PROVIDER):
        raise Http404


def referrer_patients(user):
    """The patients a referring provider referred: the only ones whose reports they see."""
    _check_referrer(user)
    return Patient.objects.filter(referring_provider=user)


# The report page's read: the patient if this referrer referred them, and the versions of
# their record (ketacare.fragments), in one statement compiled once.
_REFERRED = Prepared(lambda pk, referrer: with_record_versions(
    Patient.objects.filter(pk=pk, referring_provider=referrer), "pk"), pk=int, referrer=int)


def get_referred_patient_for_user(user, pk: int) -> Patient:
    """A referring provider's own patient, read-only; any other patient is a 404. The
    versions of the record come with it (ketacare.fragments.versions_read_with)."""
    _check_referrer(user)
    return _one(_REFERRED, pk, referrer=user.pk)


# A course on a referring provider's report (its chart): the course if this referrer referred
# its patient, with its patient, plan and record's versions, in one statement compiled once.
_REFERRED_COURSE = Prepared(lambda pk, referrer: with_record_versions(
    _course(pk).filter(patient__referring_provider=referrer)), pk=int, referrer=int)


def get_referred_course_for_user(user, pk: int) -> Course:
    """A course of a referring provider's own patient, read-only, with the versions of its
    record; any other course is a 404."""
    _check_referrer(user)
    return _one(_REFERRED_COURSE, pk, referrer=user.pk)


def get_rems_form_session_for_user(user, pk: int, *, write: bool = False) -> TreatmentSession:
    """The session of a REMS monitoring form (SPEC §8), read as the form reads it: 404 when
    the session has no form (not intranasal, patient not enrolled, voided)."""
    from rems.filling import forms_queryset  # rems builds on this module's models

    _check(user, write)
    try:
        return forms_queryset().get(pk=pk)
    except TreatmentSession.DoesNotExist:
        raise Http404 from None
