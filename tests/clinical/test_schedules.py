"""The schedules of SPEC §7: steps from the clinic's defaults, due and overdue, proposals."""

from datetime import date, timedelta

import pytest

from clinical.schedules import (
    Defaults,
    Due,
    Schedule,
    Step,
    describe,
    due_state,
    per_week_interval,
    position,
    proposed_days,
)

D = Defaults()
MON = date(2026, 3, 2)  # a Monday


def test_the_guidance_defaults_read_as_the_guidance_says():
    assert describe(D.steps(Schedule.KETAMINE_INDUCTION)) == "2–3 a week × 6"
    assert describe(D.steps(Schedule.ESKETAMINE)) == (
        "twice weekly, weeks 1–4 × 8, weekly, weeks 5–8 × 4, then weekly or every 2 weeks"
    )
    assert describe(D.steps(Schedule.GRADUAL_SPACING)) == (
        "weekly × 4, every 2 weeks × 4–8, every 3 weeks × 4, monthly × 3–6"
    )


@pytest.mark.parametrize("low,high,expected", [(2, 3, (2, 4)), (2, 2, (3, 4)), (1, 1, (7, 7)),
                                               (3, 3, (2, 3)), (7, 7, (1, 1))])
def test_sessions_a_week_become_days_between_sessions(low, high, expected):
    assert per_week_interval(low, high) == expected


def test_steps_survive_being_stored_as_json():
    steps = D.steps(Schedule.GRADUAL_SPACING)
    assert [Step.from_json(s.to_json()) for s in steps] == steps


def test_position_walks_through_the_steps():
    steps = D.steps(Schedule.GRADUAL_SPACING)
    assert position(steps, 0).step.label == "weekly"
    assert position(steps, 0).remaining_in_step == 4
    assert position(steps, 4).step.label == "every 2 weeks"
    # Within "every 2 weeks × 4–8", from the 4th on the clinician may space to every 3 weeks.
    assert position(steps, 7).longest_interval == 14
    assert position(steps, 8).longest_interval == 21
    assert position(steps, 4 + 8).step.label == "every 3 weeks"
    assert position(steps, 4 + 8 + 4 + 6).step is None  # complete


def test_an_open_ended_step_never_completes():
    steps = D.steps(Schedule.ESKETAMINE)
    far = position(steps, 200)
    assert far.step.label == "weekly or every 2 weeks"
    assert far.remaining_in_step is None
    assert (far.step.interval_min_days, far.longest_interval) == (7, 14)


IV = D.steps(Schedule.KETAMINE_INDUCTION)


def test_the_first_session_is_due_on_the_plan_start():
    assert due_state(IV, MON, 0, None, MON - timedelta(days=1)).state == Due.NOT_YET
    due = due_state(IV, MON, 0, None, MON)
    assert (due.state, due.due_on, due.overdue_after) == (Due.DUE, MON, MON + timedelta(days=4))


@pytest.mark.parametrize("days_after,state", [
    (1, Due.NOT_YET), (2, Due.DUE), (4, Due.DUE), (5, Due.OVERDUE), (9, Due.OVERDUE),
])
def test_induction_sessions_are_due_two_to_four_days_apart(days_after, state):
    due = due_state(IV, MON, 3, MON, MON + timedelta(days=days_after))
    assert due.state == state
    assert due.due_on == MON + timedelta(days=2)
    assert due.overdue_after == MON + timedelta(days=4)


def test_overdue_by_a_whole_interval_is_bad():
    assert not due_state(IV, MON, 3, MON, MON + timedelta(days=7)).badly_overdue
    late = due_state(IV, MON, 3, MON, MON + timedelta(days=8))
    assert (late.days_overdue, late.badly_overdue) == (4, True)


def test_the_plan_is_complete_after_its_last_session():
    assert due_state(IV, MON, 6, MON, MON + timedelta(days=60)).state == Due.COMPLETE


def test_proposals_follow_the_shortest_interval_and_skip_weekends():
    days = proposed_days(IV, MON, [], MON, 6)
    assert [d.strftime("%a %d") for d in days] == [
        "Mon 02", "Wed 04", "Fri 06", "Mon 09", "Wed 11", "Fri 13"]
    with_weekends = proposed_days(IV, MON, [], MON, 4, weekends=True)
    assert with_weekends[3] == date(2026, 3, 8)  # a Sunday


def test_proposals_count_the_sessions_given_and_stop_at_the_plan_end():
    days = proposed_days(IV, MON, [MON, MON + timedelta(days=2)], MON + timedelta(days=3), 10)
    assert len(days) == 4  # 6 in all
    assert days[0] == MON + timedelta(days=4)


def test_proposals_are_never_before_the_earliest_day():
    later = MON + timedelta(days=22)  # a Tuesday
    assert proposed_days(IV, MON, [MON], later, 1) == [later]
