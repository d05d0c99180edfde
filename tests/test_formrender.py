"""The session form's widgets written in Python (ketacare.formrender) are Django's own markup,
character for character; each field carries Bootstrap's class, its label, errors and help."""

from datetime import date

import pytest
from django.forms.renderers import DjangoTemplates

from courses.forms import AdverseEventFormSet, SessionForm
from ketacare.formrender import PLAIN_WIDGETS, bootstrap_field
from tests.factories import CourseFactory

pytestmark = pytest.mark.django_db

POSTED = {  # wrong in several ways: errors on some fields, values kept on others
    "started_at": "2026-02-05T09:00", "route": "intranasal", "dose_mg": "55",
    "bp_pre_systolic": "abc", "note": 'anxious & "tired" <b>', "sedation": "true",
    "device_lot": "LOT<1>", "status": "stopped", "ae-TOTAL_FORMS": "3",
    "ae-INITIAL_FORMS": "0", "ae-0-description": "nausea", "ae-0-severity": "",
}


def every_field(form, events):
    return [*form, *(field for event in events for field in event)]


@pytest.mark.parametrize("data", [None, POSTED])
def test_every_widget_is_djangos_own_markup(data):
    course = CourseFactory(started_on=date(2026, 2, 1))
    form = SessionForm(data, course=course, initial={"route": "iv"})
    events = AdverseEventFormSet(data, prefix="ae")
    if data:
        assert not form.is_valid() and not events.is_valid()
    templates = DjangoTemplates()
    for field in every_field(form, events):
        attrs = field.build_widget_attrs({})
        plain = field.field.widget.render(field.html_name, field.value(), attrs, PLAIN_WIDGETS)
        django = field.field.widget.render(field.html_name, field.value(), attrs, templates)
        assert plain == django, field.name
    assert str(events.management_form) == events.management_form.render(renderer=templates)


def test_each_field_has_its_label_class_errors_and_help_text():
    course = CourseFactory(started_on=date(2026, 2, 1))
    form = SessionForm(POSTED, course=course)
    form.is_valid()
    bp = bootstrap_field(form["bp_pre_systolic"])
    assert bp.startswith('<div id="div_id_bp_pre_systolic" class="mb-3">')
    assert 'class="form-control is-invalid"' in bp and 'aria-invalid="true"' in bp
    assert '<div id="id_bp_pre_systolic_error" class="invalid-feedback"><p ' \
           'id="error_1_id_bp_pre_systolic"><strong>Systolic BP before must be a whole ' \
           "number in mmHg.</strong></p></div>" in bp
    route = bootstrap_field(form["route"])
    assert '<label for="id_route" class="form-label requiredField">Route<span ' \
           'class="asteriskField">*</span></label>' in route
    assert 'class="form-select"' in route and '<option value="intranasal" selected>' in route
    dose = bootstrap_field(form["dose_mg"])
    assert '<div id="id_dose_mg_helptext" class="form-text">Intranasal: 28, 56 or 84 mg.' in dose
    note = bootstrap_field(form["note"])
    assert "anxious &amp; &quot;tired&quot; &lt;b&gt;</textarea>" in note
    monitoring = bootstrap_field(form["enhanced_monitoring"])
    assert monitoring.startswith('<div class="mb-3"><div id="div_id_enhanced_monitoring" '
                                 'class="form-check">')
    assert 'class="form-check-input"' in monitoring
    assert 'class="form-check-label">Enhanced monitoring confirmed</label>' in monitoring
    hidden = str(form["submission_token"])
    assert hidden.startswith('<input type="hidden" name="submission_token"')
    assert "class" not in hidden
