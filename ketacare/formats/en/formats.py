# Unambiguous ISO dates wherever a clinician reads one (Django 5 always localizes, so the
# DATE_FORMAT setting alone would be overridden by the "en" locale).
DATE_FORMAT = "Y-m-d"
SHORT_DATE_FORMAT = "Y-m-d"
DATETIME_FORMAT = "Y-m-d H:i"
SHORT_DATETIME_FORMAT = "Y-m-d H:i"
