"""Long forms rendered fast, as plain Bootstrap 5 markup.

The session form has some fifty fields. Rendered through crispy-forms, each field took a
dozen template includes, and Django renders even a bare widget through templates (a
``<select>`` one template per option): 35 ms for the form (issue 11). Here:

- :class:`PlainWidgets` writes the markup of Django's own widget templates (input, select
  and its options, textarea) in Python, character for character, and leaves any other widget
  to those templates;
- :class:`BootstrapField` gives each widget its Bootstrap class (``form-control``,
  ``form-select``, ``form-check-input``) and ``is-invalid`` when the field has errors;
- :func:`bootstrap_field` writes the label, help text and errors around each widget (the
  ``{{ form.x|bootstrap }}`` filter of ``courses/templatetags/plainforms.py``); the form's
  own template lays the fields out in Bootstrap's grid."""

from html import escape

from django.forms import BoundField
from django.forms.renderers import DjangoTemplates
from django.forms.widgets import CheckboxInput, Select
from django.utils.safestring import SafeString, mark_safe

# The widgets whose templates only include input.html (django/forms/templates).
INPUTS = {f"django/forms/widgets/{name}.html" for name in (
    "input", "text", "number", "email", "url", "password", "hidden", "date", "datetime",
    "time", "search", "tel", "color", "checkbox",
)}
SELECT = "django/forms/widgets/select.html"
OPTION = "django/forms/widgets/select_option.html"
TEXTAREA = "django/forms/widgets/textarea.html"


def conditional_escape(value) -> str:
    """django.utils.html.conditional_escape without its lazy-string wrapper (a third of the
    time of a widget): safe strings as they are, anything else escaped as Django escapes."""
    return value.__html__() if hasattr(value, "__html__") else escape(str(value))


def _attrs(attrs: dict) -> str:
    """django/forms/widgets/attrs.html: `` name="value"``, a bare name for True, none for
    False."""
    return "".join(
        f" {name}" if value is True else f' {name}="{conditional_escape(value)}"'
        for name, value in attrs.items() if value is not False
    )


def _input(widget: dict) -> str:
    value = widget["value"]
    value = "" if value is None else f' value="{conditional_escape(value)}"'
    attrs = _attrs(widget["attrs"])
    return f'<input type="{widget["type"]}" name="{widget["name"]}"{value}{attrs}>'


def _option(option: dict) -> str:
    return (f'<option value="{conditional_escape(option["value"])}"{_attrs(option["attrs"])}>'
            f'{conditional_escape(option["label"])}</option>')


def _select(widget: dict) -> str:
    out = [f'<select name="{widget["name"]}"{_attrs(widget["attrs"])}>']
    for group_name, group_choices, _ in widget["optgroups"]:
        if group_name:
            out.append(f'\n  <optgroup label="{conditional_escape(group_name)}">')
        for option in group_choices:
            if option["template_name"] != OPTION:
                return ""  # not Django's own option: left to the templates
            out.append(f"\n  {_option(option)}\n")  # the option template ends in a newline
        if group_name:
            out.append("\n  </optgroup>")
    out.append("\n</select>")
    return "".join(out)


def _textarea(widget: dict) -> str:
    value = conditional_escape(widget["value"]) if widget["value"] else ""
    return f'<textarea name="{widget["name"]}"{_attrs(widget["attrs"])}>\n{value}</textarea>'


class PlainWidgets(DjangoTemplates):
    """Django's form renderer, with its input, select and textarea templates written in
    Python (the same markup: tests/test_formrender.py compares them)."""

    def render(self, template_name, context, request=None):
        widget = context.get("widget")
        html = ""
        if widget is not None:
            if template_name in INPUTS:
                html = _input(widget)
            elif template_name == SELECT:
                html = _select(widget)
            elif template_name == TEXTAREA:
                html = _textarea(widget)
        return html or super().render(template_name, context, request)


PLAIN_WIDGETS = PlainWidgets()


class BootstrapField(BoundField):
    """A field whose widget carries Bootstrap 5's class, and ``is-invalid`` with errors."""

    def build_widget_attrs(self, attrs, widget=None):
        attrs = super().build_widget_attrs(attrs, widget)
        widget = widget or self.field.widget
        if widget.is_hidden:
            return attrs
        if isinstance(widget, CheckboxInput):
            css = "form-check-input"
        elif isinstance(widget, Select):
            css = "form-select"
        else:
            css = "form-control"
        # Django marks a field with errors aria-invalid (BoundField.build_widget_attrs).
        classes = [widget.attrs.get("class"), attrs.get("class"), css,
                   "is-invalid" if attrs.get("aria-invalid") else None]
        attrs["class"] = " ".join(c for c in classes if c)
        return attrs


class BootstrapForm:
    """Mixed into a form (before ``forms.Form``): rendered by :data:`PLAIN_WIDGETS` with
    :class:`BootstrapField` fields."""

    default_renderer = PLAIN_WIDGETS
    bound_field_class = BootstrapField


def bootstrap_field(field: BoundField) -> SafeString:
    """``field`` as Bootstrap 5 markup: its label (a required one marked *), the widget (with
    its Bootstrap class, and is-invalid with errors), each error, the help text; with the
    ids crispy-forms wrote (div_id_<name>, id_<name>_helptext, error_<n>_id_<name>), which
    the page's script and the browser tests read. Written here rather than in a template
    partial: a template reading a BoundField's attributes costs some 45 µs a field, this 5."""
    id_ = field.auto_id
    required = field.field.required
    star = '<span class="asteriskField">*</span>' if required else ""
    label_class = " requiredField" if required else ""
    label = conditional_escape(field.label)
    errors = field.errors
    tail = ""
    if errors:
        tail += (f'  <div id="{id_}_error" class="invalid-feedback">' + "".join(
            f'<p id="error_{n}_{id_}"><strong>{conditional_escape(error)}</strong></p>'
            for n, error in enumerate(errors, 1)) + "</div>\n")
    if field.help_text:
        tail += (f'  <div id="{id_}_helptext" class="form-text">'
                 f"{conditional_escape(field.help_text)}</div>\n")
    if isinstance(field.field.widget, CheckboxInput):
        return mark_safe(
            f'<div class="mb-3"><div id="div_{id_}" class="form-check">\n  {field.as_widget()}\n'
            f'  <label for="{id_}" class="form-check-label{label_class}">{label}{star}</label>\n'
            f"{tail}</div></div>")
    return mark_safe(
        f'<div id="div_{id_}" class="mb-3">\n'
        f'  <label for="{id_}" class="form-label{label_class}">{label}{star}</label>\n'
        f"  {field.as_widget()}\n{tail}</div>")
