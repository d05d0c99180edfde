from django.apps import AppConfig


class RemsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "rems"
    verbose_name = "Spravato REMS monitoring forms"
