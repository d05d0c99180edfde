"""Every role's pages pass axe-core's WCAG 2 A/AA checks (and its best practices) at a desktop
and a tablet width, in their error states too, and the skip link reaches the page's content.

axe-core (Deque's engine, bundled by axe-playwright-python) runs in the real page, so it judges
what the browser computed: contrast on the tinted row a critical appointment gets, the name a
screen reader reads for a grid's radio buttons, an empty table header.
"""

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.urls import reverse
from playwright.sync_api import expect

from accounts.models import User
from patients.models import Patient
from tests.browser.conftest import log_in
from tests.factories import sent_self_report_link

pytestmark = pytest.mark.browser

AXE = Axe()
WIDTHS = [1366, 768]


def violations(page) -> list[str]:
    """axe's violations on the page as it stands, its charts arrived (static/js/chart.js),
    one readable line per rule."""
    expect(page.locator("[data-chart-src][aria-busy]")).to_have_count(0)
    assert page.locator(".chart-failed").count() == 0, page.url
    found = AXE.run(page).response["violations"]
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at "
        + "; ".join(" ".join(node["target"]) for node in v["nodes"][:3])
        for v in found
    ]


def check_each(page, urls, width: int) -> None:
    page.set_viewport_size({"width": width, "height": 900})
    failures = {}
    for url in urls:
        response = page.goto(url)
        assert response.status == 200, url
        if found := violations(page):
            failures[url] = found
    assert not failures, failures


def posted_empty(page, url: str) -> list[str]:
    """The form at ``url`` sent with nothing typed in (what the form prefills, such as the last
    session's dose, cleared): its error state."""
    page.goto(url)
    page.locator("main form[method=post] input[type=number], main form[method=post] "
                 "input[type=text]").evaluate_all("els => els.forEach(e => { e.value = ''; })")
    page.locator("main form[method=post]").last.evaluate("form => form.requestSubmit()")
    expect(page.locator(".invalid-feedback, .text-danger, .alert-danger").first).to_be_visible()
    return violations(page)


def demo_course(record_number: str):
    return Patient.objects.get(record_number=record_number).courses.order_by("-pk").first()


@pytest.mark.parametrize("width", WIDTHS)
def test_a_clinicians_pages_pass_axe(page, demo_clinic, width):
    log_in(page, "clinician")
    course = demo_course("DEMO-001")
    urls = [
        reverse("clinic:day"), reverse("clinic:unbooked"), reverse("clinic:undecided"),
        reverse("patients:list"), reverse("patients:list") + "?q=DEMO",
        reverse("patients:detail", args=[course.patient_id]),
        reverse("patients:edit", args=[course.patient_id]),
        reverse("courses:sessions", args=[course.pk]), reverse("courses:scores", args=[course.pk]),
        reverse("clinic:plan", args=[course.pk]),
        reverse("courses:session-new", args=[course.pk]),
        reverse("assessments:new", args=[course.pk, "madrs"]),
        reverse("assessments:new", args=[course.pk, "phq9"]),
        reverse("rems:queue"), reverse("outcomes:dashboard"),
        reverse("guidance:rules"), reverse("guidance:sources"),
    ]
    # Every story's course page: each shows its own flags, phases, chart and plan.
    session = course.sessions.order_by("-pk").first()
    urls += [
        reverse("courses:session-detail", args=[session.pk]),
        reverse("courses:session-amend", args=[session.pk]),
        reverse("courses:session-void", args=[session.pk]),
        reverse("courses:flag-decide", args=[course.pk, "BENZODIAZEPINE"]) + "?decision=accepted",
        reverse("clinic:appointment-new", args=[course.pk]),
        reverse("courses:phase", args=[course.pk]),
        reverse("courses:end", args=[course.pk]),
    ]
    page.goto(reverse("rems:queue"))  # a REMS form, as the queue links it
    urls.append(page.locator("main a[href^='/rems/'][href$='/']").first.get_attribute("href"))
    urls += [
        reverse("courses:detail", args=[pk])
        for pk in Patient.objects.filter(record_number__lte="DEMO-015")
        .values_list("courses__pk", flat=True).order_by("courses__pk")
        if pk is not None
    ]
    check_each(page, urls, width)


@pytest.mark.parametrize("width", WIDTHS)
def test_a_clinicians_forms_in_their_error_state_pass_axe(page, demo_clinic, width):
    log_in(page, "clinician")
    page.set_viewport_size({"width": width, "height": 900})
    course = demo_course("DEMO-001")
    urls = [
        reverse("courses:session-new", args=[course.pk]),
        reverse("assessments:new", args=[course.pk, "madrs"]),
        reverse("assessments:new", args=[course.pk, "phq9"]),
        reverse("patients:new"),
        reverse("patients:weight-new", args=[course.patient_id]),
        reverse("patients:trial-new", args=[course.patient_id]),
        reverse("patients:medication-new", args=[course.patient_id]),
    ]
    failures = {url: found for url in urls if (found := posted_empty(page, url))}
    assert not failures, failures


@pytest.mark.parametrize("width", WIDTHS)
def test_an_admins_pages_pass_axe(page, demo_clinic, width):
    log_in(page, "admin")
    clinician = User.objects.get(username="clinician")
    urls = [
        reverse("staff-list"), reverse("staff-create"),
        reverse("staff-detail", args=[clinician.pk]), reverse("staff-edit", args=[clinician.pk]),
        reverse("clinic:settings"), reverse("exports:list"), reverse("audit:report"),
        reverse("outcomes:dashboard"), reverse("password_change"),
    ]
    check_each(page, urls, width)
    assert not posted_empty(page, reverse("staff-create"))


@pytest.mark.parametrize("width", WIDTHS)
def test_a_referring_providers_pages_pass_axe(page, demo_clinic, width):
    log_in(page, "referrer1")
    referred = User.objects.get(username="referrer1").referred_patients.order_by("pk")
    urls = [reverse("reports:list")]
    urls += [reverse("reports:patient", args=[p.pk]) for p in referred]
    check_each(page, urls, width)


def test_the_pages_before_login_and_the_patients_questionnaire_pass_axe(page, demo_clinic):
    check_each(page, [reverse("login"), reverse("login") + "?idle=1"], 1366)
    page.fill("input[name=username]", "clinician")
    page.fill("input[name=password]", "not the password")
    page.get_by_role("button", name="Log in").click()
    expect(page.locator(".alert-danger, .text-danger").first).to_be_visible()
    assert not violations(page)
    assert page.goto("/no-such-page/").status == 404
    assert not violations(page)

    # The patient's questionnaire on a phone, unanswered and sent back incomplete.
    course = demo_course("DEMO-005")
    _, token = sent_self_report_link(course, User.objects.get(username="clinician"))
    page.set_viewport_size({"width": 390, "height": 844})
    check_each(page, [reverse("selfreport:answer", args=[token])], 390)
    page.locator("form[method=post]").evaluate("form => form.requestSubmit()")
    expect(page.locator(".text-danger, .alert-danger, .invalid-feedback").first).to_be_visible()
    assert not violations(page)


def test_the_skip_link_is_the_first_stop_and_lands_on_the_content(page, demo_clinic):
    log_in(page, "clinician")
    page.goto(reverse("patients:list"))
    skip = page.get_by_role("link", name="Skip to main content")
    assert skip.bounding_box()["width"] <= 1  # out of sight until the keyboard reaches it
    page.keyboard.press("Tab")
    expect(skip).to_be_focused()
    # Shown, and drawn over the navigation bar rather than under it.
    box = skip.bounding_box()
    assert box["width"] > 100 and box["height"] > 20
    on_top = page.evaluate(
        "([x, y]) => document.elementFromPoint(x, y).closest('a')?.textContent",
        [box["x"] + box["width"] / 2, box["y"] + box["height"] / 2],
    )
    assert on_top == "Skip to main content"
    page.keyboard.press("Enter")
    expect(page.locator("main#main")).to_be_focused()


def test_an_admins_menu_folds_behind_a_button_on_a_tablet(page, demo_clinic):
    """Ten entries would wrap into three rows at 768 px: they fold, and the button opens them
    (by keyboard too). At 1366 px they show in one row, with no button."""
    log_in(page, "admin")
    page.set_viewport_size({"width": 768, "height": 900})
    page.goto(reverse("staff-list"))
    staff = page.get_by_role("link", name="Staff", exact=True)
    expect(staff).to_be_hidden()
    menu = page.get_by_role("button", name="Menu")
    expect(menu).to_have_attribute("aria-expanded", "false")
    menu.focus()
    page.keyboard.press("Enter")
    expect(staff).to_be_visible()
    expect(menu).to_have_attribute("aria-expanded", "true")
    assert staff.get_attribute("aria-current") == "page"
    assert not violations(page)
    page.set_viewport_size({"width": 1366, "height": 900})
    page.goto(reverse("staff-list"))
    expect(page.get_by_role("button", name="Menu")).to_be_hidden()
    boxes = [page.get_by_role("link", name=name, exact=True).bounding_box()
             for name in ("Day sheet", "Clinic settings")]
    assert boxes[0]["y"] == boxes[1]["y"]  # one row
