"""CSV cells that a spreadsheet will not run as formulas (OWASP "CSV injection")."""


def spreadsheet_safe(value: str) -> str:
    """Prefix a leading =, +, -, @, tab or return with a quote, so typed text stays text."""
    return f"'{value}" if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value
