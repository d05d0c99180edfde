from django import template
from django.utils.safestring import SafeString, mark_safe

register = template.Library()


@register.filter
def rows_html(items) -> SafeString:
    """Rows written in Python (each item's ``html``, escaped there) as one piece of the page:
    no lookup per row (clinic.daysheet.Undecided, clinic.plans.Unbooked)."""
    return mark_safe("".join(item.html for item in items))
