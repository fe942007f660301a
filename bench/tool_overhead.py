"""The per-turn overhead of the tool machinery (conversations/tool_loop.py, tools/runtime.py), in process.

With an instant fake LLM (tests/fakellm.py on loopback) and an instant tool (an HTTP tool answering a tiny JSON
from a local fake site), three kinds of turn run interleaved:
  * plain: the mind has no tools (the request is the plain chat request);
  * offered: the mind has the tool, the model answers without calling it (toolbox_for, specs, rules);
  * one call: the model calls the tool once, then answers.
The overhead of a turn with one call is its time minus the plain turn's, minus the tool's own time (its outcome's
duration_ms) and minus one more LLM round trip, measured on its own (a streamed request to the same fake, with a
client made per request as the loop does). What is left is the machinery: the toolbox, the saved call and result
messages, the audit entry, the passages and the prompt growing. Target: <= 10 ms.

Usage: .venv/bin/python bench/tool_overhead.py [--turns 40] [--write docs/bench/tools.md]
"""

import argparse
import statistics
import time

from common import git_revision, machine, publish, use_bench_database

TARGET_MS = 10.0


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))] if ordered else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--turns", type=int, default=40, help="turns of each kind (interleaved)")
    parser.add_argument("--write", help="also write the Markdown report to this file")
    args = parser.parse_args()

    use_bench_database("minds_bench_tools")
    from django.conf import settings

    from accounts.models import Workspace
    from conversations.chat import ToolReturned, TurnDone, chat_stream
    from integrations import llm
    from knowledge.search import KnowledgeScope
    from minds.models import Mind
    from tests.fakellm import FakeLLM, tool_call
    from tests.fakesite import FakeSite
    from tools.models import Tool
    from tools.runtime import toolbox_for

    settings.SSRF_ALLOW_LOOPBACK = True  # the instant tool's site listens on 127.0.0.1
    Workspace.objects.filter(name="Tool overhead bench").delete()  # an earlier run's
    workspace = Workspace.objects.create(name="Tool overhead bench")
    plain = Mind.objects.create(workspace=workspace, name="Plain", slug=f"bench-plain-{workspace.id[-6:]}")
    tooled = Mind.objects.create(workspace=workspace, name="Tooled", slug=f"bench-tooled-{workspace.id[-6:]}")

    def answer(body: dict):
        calls_wanted = body.get("tools") and "call the tool" in body["messages"][-1].get("content", "")
        if calls_wanted and body["messages"][-1]["role"] != "tool":
            return tool_call("lookup_order", {"orderId": "A-1"})
        return "The order has shipped."

    kinds = ("plain", "offered", "one call", "llm round", "tool")
    samples: dict[str, list[float]] = {kind: [] for kind in kinds}
    # The same on the chat thread's CPU clock (time.thread_time): the fake servers run on other threads and the
    # database in another process, so this part hardly moves with the machine's load.
    cpu: dict[str, list[float]] = {kind: [] for kind in kinds}
    with FakeSite() as site, FakeLLM(answer) as fake:
        site.route("/orders/A-1", '{"status": "shipped"}', content_type="application/json")
        Tool.objects.create(
            workspace=workspace,
            mind=tooled,
            kind=Tool.Kind.HTTP,
            name="lookup_order",
            description="Looks up an order.",
            parameters={
                "type": "object",
                "properties": {"orderId": {"type": "string"}},
                "required": ["orderId"],
            },
            config={"method": "GET", "urlTemplate": site.url("/orders/{orderId}")},
            enabled=True,
        )
        settings.OPENAI_BASE_URL = fake.base_url
        settings.OPENAI_API_KEY = "bench"

        def turn(mind, message: str) -> tuple[float, float, list]:
            started, started_cpu = time.perf_counter(), time.thread_time()
            events = list(chat_stream(mind=mind, message=message))
            elapsed = (time.perf_counter() - started) * 1000
            elapsed_cpu = (time.thread_time() - started_cpu) * 1000
            assert isinstance(events[-1], TurnDone), events[-1]
            return elapsed, elapsed_cpu, events

        def llm_round() -> tuple[float, float]:
            usage = llm.Usage()
            started, started_cpu = time.perf_counter(), time.thread_time()
            list(
                llm.stream_chat(
                    [{"role": "user", "content": "Where is order A-1?"}],
                    model=settings.LLM_MODEL,
                    temperature=0.2,
                    usage=usage,
                )
            )
            return (time.perf_counter() - started) * 1000, (time.thread_time() - started_cpu) * 1000

        def tool_cpu() -> float:
            """The tool's own CPU on this thread: one call through a toolbox made beforehand."""
            toolbox = toolbox_for(
                tooled, conversation_id="bench", scope=KnowledgeScope.of_mind(tooled), public=False
            )
            started_cpu = time.thread_time()
            outcome = toolbox.call("lookup_order", '{"orderId": "A-1"}', timeout=10)
            assert not outcome.is_error, outcome.content
            return (time.thread_time() - started_cpu) * 1000

        for _warm in range(3):  # imports, connections, caches
            turn(plain, "Where is order A-1?")
            turn(tooled, "Where is order A-1? Please call the tool.")
            llm_round()
            tool_cpu()
        for _ in range(args.turns):
            for kind, mind, message in (
                ("plain", plain, "Where is order A-1?"),
                ("offered", tooled, "Where is order A-1?"),
                ("one call", tooled, "Where is order A-1? Please call the tool."),
            ):
                elapsed, elapsed_cpu, events = turn(mind, message)
                samples[kind].append(elapsed)
                cpu[kind].append(elapsed_cpu)
                if kind == "one call":
                    returned = [e for e in events if isinstance(e, ToolReturned)]
                    assert len(returned) == 1 and not returned[0].is_error, returned
                    samples["tool"].append(float(returned[0].duration_ms))
            elapsed, elapsed_cpu = llm_round()
            samples["llm round"].append(elapsed)
            cpu["llm round"].append(elapsed_cpu)
            cpu["tool"].append(tool_cpu())

    def overhead(figures: dict[str, list[float]]) -> float:
        return (
            _median(figures["one call"])
            - _median(figures["plain"])
            - _median(figures["tool"])
            - _median(figures["llm round"])
        )

    offered_ms = _median(samples["offered"]) - _median(samples["plain"])
    call_ms = overhead(samples)
    call_cpu = overhead(cpu)
    verdict = "met" if call_ms <= TARGET_MS else "NOT met"
    lines = [
        "# Tool machinery overhead per chat turn",
        "",
        f"Machine: {machine()}. Revision {git_revision()}. Command: `.venv/bin/python bench/tool_overhead.py "
        f"--turns {args.turns}`",
        "",
        "In process (`chat_stream`), an instant fake LLM and an instant HTTP tool on loopback; "
        f"{args.turns} turns of each kind, interleaved, after 3 warm-up rounds. Medians (p90).",
        "",
        "| Measured | Median | p90 |",
        "|---|---|---|",
        *(
            f"| {name} | {_median(values):.2f} ms | {_p90(values):.2f} ms |"
            for name, values in (
                ("turn, mind without tools", samples["plain"]),
                ("turn, tool offered, not called", samples["offered"]),
                ("turn, one tool call", samples["one call"]),
                ("the tool's own time (duration_ms)", samples["tool"]),
                ("one extra LLM round trip (streamed)", samples["llm round"]),
            )
        ),
        "",
        f"- Offering the tools (toolbox_for, specs, rules): **{offered_ms:+.2f} ms** per turn.",
        f"- One tool call, less the tool's own time and the extra LLM round trip: **{call_ms:+.2f} ms** per turn "
        f"(target <= {TARGET_MS:g} ms: {verdict}).",
        f"- The same on the chat thread's CPU clock (hardly moved by load; the database's own work not "
        f"included): **{call_cpu:+.2f} ms** (a turn without tools {_median(cpu['plain']):.2f} ms, with one "
        f"call {_median(cpu['one call']):.2f} ms, the tool {_median(cpu['tool']):.2f} ms, the LLM round "
        f"{_median(cpu['llm round']):.2f} ms).",
        "",
        "Differences of medians on a shared machine carry a few milliseconds of noise; a run on a busy machine "
        "is provisional.",
    ]
    publish(lines, args.write)


if __name__ == "__main__":
    main()
