"""ketacare.rows.format_row writes what format_html writes; clinic.plans._day what the date
filter writes."""

from datetime import date, timedelta

from django.template import Context, Template
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

from clinic.plans import _day
from ketacare.rows import format_row


def test_format_row_is_format_html():
    template = '<td title="{a}"><a href="{b}">{c}, {d}</a>{e}</td>'
    values = {"a": 'say "hi" & <b>bye</b>', "b": "/courses/1/?x=1&y='2'", "c": "O'Brien",
              "d": 42, "e": mark_safe("<span>kept</span>")}
    written = format_row(template, **values)
    assert written == format_html(template, **values)
    assert isinstance(written, SafeString)


def test_day_is_the_date_filter():
    template = Template('{{ day|date:"D j M" }}')
    for n in range(0, 400, 7):
        day = date(2026, 1, 1) + timedelta(days=n)
        assert _day(day) == template.render(Context({"day": day}))


def test_a_flags_message_is_cut_as_truncator_cuts_it():
    from django.utils.text import Truncator

    from clinic.daysheet import SHORT, cut

    words = "MADRS 44 → 33 (25.0 %) after 5 sessions; e\u0301 cafe\u0301 ≥ 0.5 mg/kg; plain text "
    # Decomposed (not NFC), NFC with a mark that has no precomposed form, symbols only.
    for text in (words, words.encode("ascii", "ignore").decode(), "x" * 200, "a&b<c> " * 30,
                 "dose q\u0307 " * 20, "44 → 33 ≥ 0.5 – café " * 10):
        for length in range(SHORT - 5, SHORT + 6):
            message = (text * 3)[:length]
            assert cut(message) == Truncator(message).chars(SHORT), message


def test_path_maker_gives_reverses_paths_under_each_script_prefix():
    from django.urls import reverse, set_script_prefix

    from ketacare.paths import path_maker

    for prefix in ("/", "/clinic/", "/"):
        set_script_prefix(prefix)
        try:
            assert path_maker("courses:detail")(12) == reverse("courses:detail", args=[12])
            assert path_maker("assessments:new", 2)(3, "madrs") == reverse(
                "assessments:new", args=[3, "madrs"])
            assert path_maker("courses:detail")(12).startswith(prefix)
        finally:
            set_script_prefix("/")
