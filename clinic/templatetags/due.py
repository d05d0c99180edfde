from django import template

from clinic.plans import due_badge

register = template.Library()
register.filter("due_badge", due_badge)
