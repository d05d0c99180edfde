"""Fast scoring: a MADRS scored with the keyboard alone, and a rejected form that keeps every
score typed and opens at the first bad item."""

import pytest
from playwright.sync_api import expect

from assessments.models import Assessment
from patients.models import Patient
from tests.browser.conftest import log_in

pytestmark = pytest.mark.browser


def _open_madrs(page):
    course = Patient.objects.get(record_number="DEMO-001").courses.get()
    log_in(page, "clinician")
    page.wait_for_url(lambda url: "/2fa/" not in url)
    page.set_viewport_size({"width": 1366, "height": 900})
    page.goto(f"/courses/{course.pk}/assessments/new/madrs/")
    return course


def test_a_madrs_scored_with_the_keyboard_only(page, demo_clinic):
    course = _open_madrs(page)
    before = Assessment.objects.filter(course=course).count()
    # The whole form fits one 1366×900 screen: the Sign button is in view without scrolling.
    expect(page.get_by_role("button", name="Sign MADRS")).to_be_in_viewport()
    # Item 1 has the focus on arrival: ten digits and Enter are the whole entry (11 interactions).
    page.keyboard.type("3322122210")
    expect(page.locator("#assessment-total")).to_have_text("18")
    expect(page.locator("#assessment-band")).to_have_text("mild")
    page.keyboard.press("Enter")
    expect(page.locator(".alert-success")).to_contain_text("MADRS signed: 18 (mild)")
    saved = Assessment.objects.filter(course=course).order_by("-id").first()
    assert Assessment.objects.filter(course=course).count() == before + 1
    assert saved.items == [3, 3, 2, 2, 1, 2, 2, 2, 1, 0]
    assert saved.total == 18


def test_a_digit_out_of_range_changes_nothing_and_the_anchors_follow_the_focus(page, demo_clinic):
    _open_madrs(page)
    page.keyboard.type("7")  # MADRS items go to 6
    expect(page.locator("input[name=item_1]:checked")).to_have_count(0)
    page.keyboard.type("4")
    expect(page.locator("input[name=item_1][value='4']")).to_be_checked()
    expect(page.locator("#anchor-line")).to_contain_text("2. Reported sadness")


def test_a_rejected_madrs_keeps_the_scores_and_opens_at_the_first_bad_item(page, demo_clinic):
    course = _open_madrs(page)
    before = Assessment.objects.filter(course=course).count()
    scores = {1: 4, 2: 4, 3: 3, 5: 2, 6: 3, 7: 3, 8: 2, 9: 2, 10: 1}  # item 4 left out
    for item, score in scores.items():
        page.check(f"input[name=item_{item}][value='{score}']")
    page.get_by_role("button", name="Sign MADRS").click()
    expect(page.locator("#score-errors")).to_contain_text("Item 4 (Reduced sleep) is required")
    # The focus is on item 4, and every score typed is still checked.
    assert page.evaluate("document.activeElement.name") == "item_4"
    expect(page.locator("#item-4")).to_be_in_viewport()
    for item, score in scores.items():
        expect(page.locator(f"input[name=item_{item}][value='{score}']")).to_be_checked()
    assert Assessment.objects.filter(course=course).count() == before
    # Typing the missing score there moves on; the form signs.
    page.keyboard.type("2")
    expect(page.locator("#assessment-total")).to_have_text("26")
    page.get_by_role("button", name="Sign MADRS").click()
    expect(page.locator(".alert-success")).to_contain_text("MADRS signed: 26 (moderate)")


def test_a_phq9_by_keyboard_goes_on_to_the_difficulty_question(page, demo_clinic):
    course = Patient.objects.get(record_number="DEMO-001").courses.get()
    log_in(page, "clinician")
    page.wait_for_url(lambda url: "/2fa/" not in url)
    page.goto(f"/courses/{course.pk}/assessments/new/phq9/")
    expect(page.locator("thead")).to_contain_text("Nearly every day")  # anchors head the grid
    page.keyboard.type("211111110")
    expect(page.locator("#assessment-total")).to_have_text("9")
    expect(page.locator("#assessment-band")).to_have_text("mild")
    assert page.evaluate("document.activeElement.id") == "id_difficulty"
    page.keyboard.type("1")  # somewhat difficult: answered, and on to Sign
    expect(page.locator("#id_difficulty")).to_have_value("somewhat")
    expect(page.get_by_role("button", name="Sign PHQ-9")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator(".alert-success")).to_contain_text("PHQ-9 signed: 9 (mild)")
    saved = Assessment.objects.filter(course=course).order_by("-id").first()
    assert (saved.items, saved.difficulty) == ([2, 1, 1, 1, 1, 1, 1, 1, 0], "somewhat")

    # Enter on the difficulty question signs the form as it stands (the question is optional).
    page.goto(f"/courses/{course.pk}/assessments/new/phq9/")
    page.keyboard.type("000000000")
    assert page.evaluate("document.activeElement.id") == "id_difficulty"
    page.keyboard.press("Enter")
    expect(page.locator(".alert-success")).to_contain_text("PHQ-9 signed: 0 (minimal)")
    saved = Assessment.objects.filter(course=course).order_by("-id").first()
    assert (saved.items, saved.difficulty) == ([0] * 9, "")
