"""Shared test helpers: keyed API clients, one assertion for errors, polling with a deadline."""

import json
import time
from collections.abc import Callable
from typing import Any

from django.contrib.admin.utils import quote
from django.test import Client

from accounts.models import Workspace
from apikeys.services import api_key_create, parse_scopes


def make_workspace(name: str) -> Workspace:
    return Workspace.objects.create(name=name)


def make_key(workspace: Workspace, scopes: str | list[str] = "all", **kwargs) -> str:
    return api_key_create(workspace=workspace, name="test", scopes=parse_scopes(scopes), **kwargs).plaintext


class KeyedClient(Client):
    """A Django test client that sends an API key and JSON bodies."""

    def __init__(self, key: str | None, **kwargs):
        super().__init__(**kwargs)
        self.key = key

    def _headers(self, headers: dict | None) -> dict:
        merged = dict(headers or {})
        if self.key:
            merged.setdefault("Authorization", f"Bearer {self.key}")
        return merged

    def get(self, path, data=None, headers=None, **kwargs):
        return super().get(path, data, headers=self._headers(headers), **kwargs)

    def delete(self, path, data="", headers=None, **kwargs):
        return super().delete(path, data, headers=self._headers(headers), **kwargs)

    def post(self, path, data=None, content_type="application/json", headers=None, **kwargs):
        if content_type == "application/json" and not isinstance(data, (str, bytes)):
            data = json.dumps(data if data is not None else {})
        return super().post(path, data, content_type=content_type, headers=self._headers(headers), **kwargs)

    def patch(self, path, data=None, content_type="application/json", headers=None, **kwargs):
        if content_type == "application/json" and not isinstance(data, (str, bytes)):
            data = json.dumps(data if data is not None else {})
        return super().patch(path, data, content_type=content_type, headers=self._headers(headers), **kwargs)

    def put(self, path, data=None, content_type="application/json", headers=None, **kwargs):
        if content_type == "application/json" and not isinstance(data, (str, bytes)):
            data = json.dumps(data if data is not None else {})
        return super().put(path, data, content_type=content_type, headers=self._headers(headers), **kwargs)

    def upload(
        self, path, file_name: str, content: bytes, content_type: str = "application/octet-stream", **kwargs
    ):
        from django.core.files.uploadedfile import SimpleUploadedFile

        upload = SimpleUploadedFile(file_name, content, content_type=content_type)
        return super().post(path, {"file": upload, **kwargs}, headers=self._headers(None))


def admin_path(model: str, object_id: str, view: str = "change") -> str:
    """`/admin/<app>/<model>/<id>/<view>/` with the id quoted as the admin quotes it: a raw id holding `_3A` or `_5F`
    would be read back as `:` or `_` and name another object (about 1 in 190 of our random ids)."""
    return f"/admin/{model}/{quote(object_id)}/{view}/"


def assert_error(response, status: int, code: str) -> dict[str, Any]:
    """Every failure uses one envelope; checks the status, the code and the envelope's shape."""
    body = response.json()
    assert response.status_code == status, (response.status_code, body)
    assert body["status"] == "error", body
    assert body["code"] == code, body
    assert isinstance(body["message"], str) and body["message"], body
    assert "Traceback" not in body["message"]
    assert isinstance(body.get("details"), dict), body
    return body


def wait_for(
    predicate: Callable[[], Any], *, timeout: float = 60, interval: float = 0.2, what: str = "condition"
):
    """Polls `predicate` until it returns something truthy; fails the test at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)
