"""The demo clinic loads once, covers the stories it promises, and refuses production."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from accounts.models import Role, User
from courses.models import Course
from outcomes.summary import Tried, outcomes
from patients.models import Patient

pytestmark = pytest.mark.django_db


def test_loading_twice_duplicates_nothing(settings, capsys):
    settings.DEBUG = True
    call_command("load_demo")
    counts = (User.objects.count(), Patient.objects.count(), Course.objects.count())
    call_command("load_demo")
    assert (User.objects.count(), Patient.objects.count(), Course.objects.count()) == counts
    assert counts[1] == 60
    assert sorted(User.objects.values_list("role", flat=True)) == sorted(
        [Role.CLINICIAN, Role.CLINIC_ADMIN, Role.REFERRING_PROVIDER, Role.REFERRING_PROVIDER]
    )
    out = capsys.readouterr().out
    assert "clinician" in out and "ketacare-demo-2026" in out


def test_it_covers_the_seed_cases(settings):
    settings.DEBUG = True
    call_command("load_demo")
    routes = {
        p.record_number: sorted({s.route for c in p.courses.all() for s in c.sessions.all()})
        for p in Patient.objects.prefetch_related("courses__sessions")
    }
    assert routes["DEMO-002"] == ["intranasal", "iv"]  # case 2: route switch in one course
    assert routes["DEMO-003"] == ["im", "iv"]  # case 3
    assert Patient.objects.filter(diagnosis__startswith="bipolar").count() >= 2
    assert Course.objects.filter(phase="maintenance").exists()
    assert Course.objects.filter(phase="ended").exists()
    # The wider clinic (one load for both checks: it takes a while) gives the outcome tables
    # groups large enough for rates.
    today = timezone.localdate()
    found = outcomes(today - timedelta(days=364), today)
    assert found.total.courses == 60
    compared = [row for row in found.by_route if not row.too_few]
    assert {row.key for row in compared} >= {"iv", "im", "intranasal"}
    tried = {row.key: row for row in found.by_tried}
    for key in (Tried.ESCALATION, Tried.BENZODIAZEPINE_TAPER, Tried.NONE):
        assert not tried[key].too_few
    assert Course.objects.filter(phase="ended").count() >= 20
    assert Course.objects.exclude(phase="ended").count() >= 20


def test_it_refuses_to_load_with_debug_off(settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="DEBUG"):
        call_command("load_demo")
    assert not Patient.objects.exists()


def test_the_demo_day_sheet_is_full_and_loading_again_books_nothing(settings, client):
    from django.utils import timezone

    from clinic.models import Appointment, Plan
    from clinic.plans import day_bounds

    settings.DEBUG = True
    call_command("load_demo")
    count = Appointment.objects.count()
    call_command("load_demo")
    assert Appointment.objects.count() == count
    start, end = day_bounds(timezone.localdate())
    today = Appointment.objects.filter(starts_at__gte=start, starts_at__lt=end)
    assert today.filter(status="booked").count() >= 8
    assert today.filter(status="cancelled").count() == 1
    assert Appointment.objects.filter(starts_at__gte=end).count() >= 8
    assert Plan.objects.count() == Course.objects.active().count()
    # Some courses are left with nothing booked, for the day sheet's list.
    assert Course.objects.active().exclude(appointments__status="booked").exists()

def test_it_shows_scores_overdue_and_a_dose_not_suggested_again(settings):
    settings.DEBUG = True
    call_command("load_demo")
    overdue = Course.objects.get(patient__record_number="DEMO-014").evaluation
    assert "SCORES_OVERDUE" in [flag["code"] for flag in overdue["flags"]]
    withheld = Course.objects.get(patient__record_number="DEMO-015").evaluation
    assert "DOSE_ESCALATION" not in [flag["code"] for flag in withheld["flags"]]
    assert withheld["status"] == "non_response"
    assert withheld["withheld"][0].startswith(
        "Dose escalation to 0.75 mg/kg is not suggested: poorly tolerated in this course at "
        "0.75 mg/kg IV ketamine (severe dissociation on "
    )
