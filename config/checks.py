"""Start-up checks (`manage.py migrate`, `check`, `runserver` run them): refuse an unsafe production configuration."""

import sys

from django.conf import settings
from django.core.checks import Error, register

DEV_SECRET_KEY_REFUSED = "minds.E001"


def running_tests() -> bool:
    # pytest (tests, and the processes they start with MINDS_DEV_RUN) or Django's own runner (`manage.py test`).
    return "pytest" in sys.modules or sys.argv[1:2] == ["test"]


@register("security", deploy=False)
def dev_secret_key_check(app_configs=None, **kwargs) -> list[Error]:
    """The development SECRET_KEY is public (it is in this repository): with it anyone can forge admin sessions and
    signed values. DEBUG on, `make dev`/`make test` (MINDS_DEV_RUN=1) and test runs may use it; nothing else."""
    if settings.SECRET_KEY != settings.DEV_SECRET_KEY or settings.DEBUG or settings.MINDS_DEV_RUN:
        return []
    if running_tests():
        return []
    return [
        Error(
            "DJANGO_SECRET_KEY is the development key while DEBUG is off.",
            hint=(
                "Set DJANGO_SECRET_KEY to a long random value (python -c 'import secrets; "
                "print(secrets.token_urlsafe(50))'), or set MINDS_DEV_RUN=1 for a local development run."
            ),
            id=DEV_SECRET_KEY_REFUSED,
        )
    ]
