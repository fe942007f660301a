from django.apps import AppConfig


class CompatConfig(AppConfig):
    """The TypingMind, OpenIndex and Trigglio surfaces: thin adapters over the same services."""

    name = "compat"
    verbose_name = "Compatibility surfaces"
