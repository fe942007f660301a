from django.apps import AppConfig


class MindsConfig(AppConfig):
    name = "minds"
    default_auto_field = "django.db.models.BigAutoField"
