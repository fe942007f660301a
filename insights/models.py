from minds.models import Mind


class MindInsights(Mind):
    """The admin's read-only insights page of a mind (insights/admin.py); no table of its own."""

    class Meta:
        proxy = True
        verbose_name = "mind insights"
        verbose_name_plural = "mind insights"
