"""The owner lock of source creation and uploads (knowledge.source_creation.owner_lock) must not hold up rows that
merely point at the owner: a chat creating a conversation in the same mind commits while the lock is held.

Found by bench/mixed_load.py: taken FOR UPDATE, the lock conflicted with the FOR KEY SHARE that PostgreSQL's
deferred foreign-key checks take at COMMIT, so an upload locking mind then workspace and a conversation insert
checking workspace then mind deadlocked, and the upload was answered 503. FOR NO KEY UPDATE still serialises the
lock's holders (and waits for a deletion of the owner) but lets references to the row through."""

import threading

import pytest
from django.db import connection, transaction

from conversations.models import Conversation
from knowledge.source_creation import owner_lock
from minds.models import Mind

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_conversation_commits_while_the_owner_lock_is_held(workspace):
    mind = Mind.objects.create(workspace=workspace, name="Locked", slug="locked-owner")
    locked, release = threading.Event(), threading.Event()

    def hold():
        try:
            with transaction.atomic():
                assert owner_lock(mind) is not None
                locked.set()
                release.wait(30)
        finally:
            connection.close()  # this thread's own connection

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert locked.wait(30), "the lock was never taken"
        with transaction.atomic():
            # A conflict fails within seconds instead of waiting for the holder (that would be the bug).
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL lock_timeout = '3s'")
            conversation = Conversation.objects.create(
                workspace=workspace, mind=mind, channel=Conversation.Channel.API
            )
        assert Conversation.objects.filter(id=conversation.id).exists()
    finally:
        release.set()
        holder.join(30)


def test_the_owner_lock_still_serialises_its_holders(workspace):
    mind = Mind.objects.create(workspace=workspace, name="Locked", slug="locked-owner-2")
    locked, release = threading.Event(), threading.Event()

    def hold():
        try:
            with transaction.atomic():
                owner_lock(mind)
                locked.set()
                release.wait(30)
        finally:
            connection.close()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert locked.wait(30), "the lock was never taken"
        with pytest.raises(Exception, match="lock timeout"), transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL lock_timeout = '300ms'")
            owner_lock(mind)
    finally:
        release.set()
        holder.join(30)
