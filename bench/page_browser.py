"""The public page as a visitor's browser gets it: page weight (HTML + CSS + JS, raw and gzip) and the time to first
token seen in Chromium, from pressing Send to the first words drawn in the answer (and to the end of the answer).

Production server (gunicorn gthread + whitenoise), a fake OpenAI-compatible LLM on loopback that streams a
Markdown answer with a citation at once (chat_ttft.FakeLLM), Debian's Chromium through Playwright (as the browser
tests). Each question is asked on a fresh page (a new visitor), after two warm-up questions.

Usage: .venv/bin/python bench/page_browser.py [--questions 20] [--write docs/bench/page_browser.md]
"""

import argparse
import gzip
import os
import re
import statistics
import sys
import urllib.request

from chat_ttft import fake_llm
from common import ROOT, machine, publish, use_bench_database
from server import Gunicorn

CHROMIUM = "/usr/bin/chromium"
BUDGET = 60 * 1024

# Press Send, then time the first words drawn (the typing indicator gone, text in the answer) and the end (Send
# enabled again), in the page's own clock.
ASK = """async (question) => {
  const input = document.getElementById('message'), send = document.getElementById('send');
  const before = document.querySelectorAll('.msg.assistant').length;
  input.value = question;
  const t0 = performance.now();
  let first = null;
  return await new Promise((resolve) => {
    const check = () => {
      const answers = document.querySelectorAll('.msg.assistant');
      const answer = answers.length > before ? answers[answers.length - 1] : null;
      if (answer && first === null && !answer.querySelector('.typing') && answer.textContent.trim()) {
        first = performance.now() - t0;
      }
      if (answer && first !== null && !send.disabled) { observer.disconnect(); resolve([first, performance.now() - t0]); }
    };
    const observer = new MutationObserver(check);
    observer.observe(document.body, {subtree: true, childList: true, characterData: true, attributes: true});
    document.getElementById('ask').requestSubmit();
  });
}"""


def page_weight(server_url: str, slug: str) -> dict[str, tuple[int, int]]:
    html = urllib.request.urlopen(f"{server_url}/m/{slug}").read()
    parts = {"HTML": html}
    for asset in re.findall(rb'<(?:script|link)[^>]+(?:src|href)="(/static/[^"]+)"', html):
        parts[asset.decode()] = urllib.request.urlopen(server_url + asset.decode()).read()
    return {name: (len(body), len(gzip.compress(body, 9))) for name, body in parts.items()}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--questions", type=int, default=20)
    parser.add_argument("--write")
    args = parser.parse_args()
    url = use_bench_database("bench_page_browser")
    from django.core.management import call_command

    call_command("collectstatic", interactive=False, verbosity=0)
    sys.path.insert(0, str(ROOT))
    from accounts.models import Workspace
    from minds.models import Mind
    from tests.corpus_minds import ready_source

    Workspace.objects.filter(name="bench-page-browser").delete()
    workspace = Workspace.objects.create(name="bench-page-browser")
    mind = Mind.objects.create(
        workspace=workspace,
        name="Ada Lovelace",
        slug="bench-browser-ada",
        is_published=True,
        headline="Mathematician and writer",
        bio="Ada wrote the first published algorithm.",
        welcome_message="Ask me about the Analytical Engine.",
        suggested_questions=["What is the Analytical Engine?"],
        public_messages_per_minute=10_000,
        public_messages_per_day=100_000,
    )
    ready_source(
        mind,
        "Notes on the Engine",
        [
            "The Analytical Engine was a proposed mechanical general-purpose computer designed by Charles Babbage.",
            "Ada Lovelace published the first algorithm intended to be carried out by such a machine in 1843.",
        ],
    )
    llm = fake_llm(pieces=12, gap=0.0)
    server = Gunicorn(
        {
            "DATABASE_URL": url,
            "REDIS_URL": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/9"),
            "OPENAI_API_KEY": "bench",
            "OPENAI_BASE_URL": f"http://127.0.0.1:{llm.server_address[1]}/v1",
        }
    )
    from playwright.sync_api import sync_playwright

    firsts, ends = [], []
    try:
        weights = page_weight(server.url, mind.slug)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"]
            )
            for n in range(args.questions + 2):
                context = browser.new_context(viewport={"width": 1280, "height": 900})
                page = context.new_page()
                page.goto(f"{server.url}/m/{mind.slug}")
                page.wait_for_load_state("load")
                first, end = page.evaluate(ASK, f"Who designed the Analytical Engine? ({n})")
                context.close()
                if n >= 2:  # the first two warm the workers (embedding model, connections)
                    firsts.append(first)
                    ends.append(end)
            browser.close()
    finally:
        server.stop()
        llm.shutdown()
    raw = sum(r for r, _ in weights.values())
    zipped = sum(z for _, z in weights.values())
    lines = [
        "# Public page in the browser",
        "",
        f"Machine: {machine()}. Server: gunicorn gthread 2×8 + whitenoise; Chromium (Debian) headless through "
        f"Playwright; a fake LLM on loopback answering at once. Command: `.venv/bin/python bench/page_browser.py`",
        "",
        "| part | bytes | gzip -9 |",
        "|---|---:|---:|",
        *[f"| {name} | {r:,} | {z:,} |" for name, (r, z) in weights.items()],
        f"| **total** | **{raw:,}** ({raw / 1024:.1f} KB; budget 60 KB) | **{zipped:,}** ({zipped / 1024:.1f} KB) |",
        "",
        f"Time from Send to the first words drawn, and to the end of the answer ({len(firsts)} questions, each on a "
        "fresh page):",
        "",
        "| | p50 | p90 | max |",
        "|---|---:|---:|---:|",
        f"| first token drawn | {statistics.median(firsts):.0f} ms | {percentile(firsts, 0.9):.0f} ms | "
        f"{max(firsts):.0f} ms |",
        f"| answer finished | {statistics.median(ends):.0f} ms | {percentile(ends, 0.9):.0f} ms | {max(ends):.0f} ms |",
        "",
    ]
    if raw >= BUDGET:
        lines.append(f"**Over budget**: {raw:,} bytes ≥ {BUDGET:,}.")
    publish(lines, args.write)


if __name__ == "__main__":
    main()
