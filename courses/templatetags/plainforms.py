"""``{{ form.field|bootstrap }}``: a field as Bootstrap 5 markup (ketacare.formrender)."""

from django import template

from ketacare.formrender import bootstrap_field

register = template.Library()

register.filter("bootstrap", bootstrap_field)
