"""Public page weight and response time under the production server (gunicorn, whitenoise for static files).

Weight: HTML + CSS + JS of /m/<slug> as served, uncompressed (target < 60 KB) and gzip -9, without the avatar.
The time to first token as the browser draws it is bench/page_browser.py.
Time: GET /m/<slug> p50/p99 at 1 and 8 concurrent clients (target p50 ≤ 20 ms).

Usage: .venv/bin/python bench/page.py [--seconds 8] [--write docs/bench/page.md]
"""

import argparse
import gzip
import os
import re
import urllib.request

from common import machine, publish, use_bench_database
from load import measure
from server import Gunicorn


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--write")
    args = parser.parse_args()
    url = use_bench_database("bench_page")
    from django.core.management import call_command

    call_command("collectstatic", interactive=False, verbosity=0)
    from accounts.models import Workspace
    from minds.models import Mind

    Workspace.objects.filter(name="bench-page").delete()
    workspace = Workspace.objects.create(name="bench-page")
    mind = Mind.objects.create(
        workspace=workspace,
        name="Ada Lovelace",
        slug="bench-page-ada",
        is_published=True,
        headline="Mathematician and writer",
        bio="Ada wrote the first published algorithm. " * 5,
        welcome_message="Ask me about the Analytical Engine.",
        expertise_areas=["mathematics", "computing", "poetry"],
        suggested_questions=[
            "What is the Analytical Engine?",
            "Who was Babbage?",
            "What are Bernoulli numbers?",
        ],
        social_links={"website": "https://example.com", "twitter": "https://twitter.com/example"},
    )
    server = Gunicorn(
        {"DATABASE_URL": url, "REDIS_URL": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/9")}
    )
    try:
        page_url = f"{server.url}/m/{mind.slug}"
        html = urllib.request.urlopen(page_url).read()
        assets = re.findall(rb'(?:href|src)="(/static/[^"]+)"', html)
        bodies = {"HTML": html}
        for asset in assets:
            bodies[asset.decode()] = urllib.request.urlopen(server.url + asset.decode()).read()
        sizes = {name: len(body) for name, body in bodies.items()}
        zipped = {name: len(gzip.compress(body, 9)) for name, body in bodies.items()}
        total = sum(sizes.values())
        measure(page_url, 2, 2)
        runs = {c: measure(page_url, c, args.seconds) for c in (1, 8)}
    finally:
        server.stop()
    lines = [
        "# Public page benchmark",
        "",
        f"Machine: {machine()}. Server: gunicorn gthread 2×8 + whitenoise. Command: `.venv/bin/python bench/page.py`",
        "",
        "| part | bytes (uncompressed) | gzip -9 |",
        "|---|---:|---:|",
        *[f"| {name} | {size:,} | {zipped[name]:,} |" for name, size in sizes.items()],
        f"| **total** | **{total:,}** ({total / 1024:.1f} KB; target < 60 KB) | **{sum(zipped.values()):,}** |",
        "",
        "| clients | req/s | p50 | p99 |",
        "|---:|---:|---:|---:|",
        *[f"| {c} | {r['rps']:.0f} | {r['p50']:.2f} ms | {r['p99']:.2f} ms |" for c, r in runs.items()],
        "",
    ]
    publish(lines, args.write)


if __name__ == "__main__":
    main()
