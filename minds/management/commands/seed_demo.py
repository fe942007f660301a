from django.core.management.base import BaseCommand
from django.utils import timezone

from accounts.models import Workspace
from apikeys.models import ALL_SCOPES, ApiKey
from apikeys.services import api_key_create
from minds.models import Mind
from minds.services import MindChanges, mind_create

DEMO_WORKSPACE = "Demo"
DEMO_KEY_NAME = "demo"


class Command(BaseCommand):
    help = (
        "Create the demo workspace and a demo mind if missing, and print a fresh demo key with every scope."
    )

    def handle(self, *args, **options):
        workspace, _ = Workspace.objects.get_or_create(name=DEMO_WORKSPACE)
        if not Mind.objects.filter(workspace=workspace).exists():
            mind_create(
                workspace=workspace,
                changes=MindChanges(
                    name="Demo Mind",
                    slug="demo-mind",
                    headline="Ask me about the documents you give me",
                    welcome_message="Hi! Add knowledge to me through the API, then ask away.",
                    suggested_questions=["What do you know?", "Where does that come from?"],
                    is_published=True,
                ),
            )
        # One demo key at a time: revoke the previous one so restarts never hit the key limit.
        ApiKey.objects.live().filter(workspace=workspace, name=DEMO_KEY_NAME).update(
            revoked_at=timezone.now()
        )
        created = api_key_create(workspace=workspace, name=DEMO_KEY_NAME, scopes=list(ALL_SCOPES))
        self.stdout.write(f"Demo workspace: {workspace.name} ({workspace.id}); demo mind at /m/demo-mind")
        self.stdout.write(created.plaintext)
