"""A secret header of an HTTP tool, through a whole chat flow: created through the API, sent to the tool's remote
end, and found nowhere else — not in the API's answers (tool, chat, conversation, audit log), not in what the model
was sent (a remote end that echoes it back has it masked), not in any log record at DEBUG nor on stderr."""

import json
import logging

import pytest

from minds.models import Mind
from tests.fakellm import FakeLLM, tool_call
from tests.fakesite import FakeSite

pytestmark = pytest.mark.django_db

TOKEN = "sk-live-9d8e7f6a5b4c3d2e1f0a"
SECRET = f"Bearer {TOKEN}"


def test_a_secret_header_reaches_the_remote_end_and_nothing_else(api, workspace, settings, caplog, capfd):
    caplog.set_level(logging.DEBUG)
    settings.SSRF_ALLOW_LOOPBACK = True  # the tool's remote end listens on 127.0.0.1
    mind = Mind.objects.create(workspace=workspace, name="Shop", slug="shop-secrets")

    def echo(request):
        shown = request.headers.get("authorization", "")
        if request.path.endswith("/DENY"):
            return 401, {"Content-Type": "text/plain"}, f"bad credentials {shown} ({shown[7:]})".encode()
        body = {
            "order": request.path.rsplit("/", 1)[-1],
            "status": "shipped",
            "seenAuth": shown,
            "token": shown[7:],
        }
        return 200, {"Content-Type": "application/json"}, json.dumps(body).encode()

    with (
        FakeSite() as site,
        FakeLLM(
            script=[
                tool_call("lookup_order", {"orderId": "A-1"}),
                tool_call("lookup_order", {"orderId": "DENY"}),
                "Your order A-1 has shipped.",
            ]
        ) as llm,
    ):
        settings.OPENAI_BASE_URL, settings.OPENAI_API_KEY = llm.base_url, "test"
        site.route("/orders/A-1", handler=echo)
        site.route("/orders/DENY", handler=echo)
        created = api.post(
            f"/api/v1/minds/{mind.id}/tools",
            {
                "kind": "http",
                "name": "lookup_order",
                "parameters": {
                    "type": "object",
                    "properties": {"orderId": {"type": "string"}},
                    "required": ["orderId"],
                },
                "config": {"urlTemplate": site.url("/orders/{orderId}")},
                "headers": {"Authorization": SECRET},
                "enabled": True,
            },
        )
        assert created.status_code == 201, created.json()
        chat = api.post(f"/api/v1/minds/{mind.id}/chat", {"message": "Where is my order A-1?"})
        assert chat.status_code == 200, chat.json()
        assert "shipped" in chat.json()["message"]["content"]
        assert [r.headers.get("authorization") for r in site.requests] == [SECRET, SECRET]
        sent_to_model = json.dumps(llm.requests)
        conversation = api.get(f"/api/v1/conversations/{chat.json()['conversationId']}")
        assert conversation.status_code == 200
        # The remote end's answers reached the model, with the secret masked.
        last = llm.chat_requests[-1]["messages"]
        results = [m["content"] for m in last if m["role"] == "tool"]
        assert len(results) == 2, last
        for shown in ('"status": "shipped"', '"seenAuth": "[secret]"', '"token": "[secret]"'):
            assert shown in results[0], results[0]
        assert "HTTP 401" in results[1] and "bad credentials [secret] ([secret])" in results[1]
    seen = [
        created.content.decode(),
        api.get(f"/api/v1/minds/{mind.id}/tools").content.decode(),
        chat.content.decode(),
        conversation.content.decode(),
        api.get("/api/v1/audit-logs").content.decode(),
        sent_to_model,
        caplog.text,
        "\n".join(str(record.__dict__) for record in caplog.records),
        "".join(capfd.readouterr()),
    ]
    for text in seen:
        assert TOKEN not in text, text[:3000]
    assert "lookup_order" in seen[4]  # the audit log does have the calls
