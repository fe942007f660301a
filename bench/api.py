"""API overhead benchmark: authenticated `GET /api/v1/minds` vs `/healthz` under the production server.

The difference at p50 is the cost of API-key authentication + scopes + the Redis rate limiter + workspace-scoped
queries (target ≤ 2 ms). The key belongs to a workspace in a bench database (`bench_api`); the per-key limit is
raised for the run (RATE_LIMIT_PER_MINUTE=10^9) so the limiter is exercised — it still counts every request in
Redis — without turning requests into 429s.

Usage: .venv/bin/python bench/api.py [--seconds 10] [--write docs/bench/api.md]
"""

import argparse
import os

from common import machine, publish, use_bench_database
from load import measure
from server import Gunicorn


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--write")
    args = parser.parse_args()
    url = use_bench_database("bench_api")
    os.environ["REDIS_URL"] = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/9")
    from accounts.models import Workspace
    from apikeys.services import api_key_create
    from minds.models import Mind

    Workspace.objects.filter(name="bench-api").delete()
    workspace = Workspace.objects.create(name="bench-api", minds_limit=100)
    for i in range(10):
        Mind.objects.create(workspace=workspace, name=f"Bench mind {i}", slug=f"bench-api-{i}")
    key = api_key_create(workspace=workspace, name="bench", scopes=["minds:read"]).plaintext
    server = Gunicorn(
        {"DATABASE_URL": url, "REDIS_URL": os.environ["REDIS_URL"], "RATE_LIMIT_PER_MINUTE": "1000000000"}
    )
    rows = []
    try:
        for path in ("/healthz", "/api/v1/auth/verify", "/api/v1/minds"):  # warm up
            measure(server.url + path, 2, 2, {"Authorization": f"Bearer {key}"})
        for connections in (1, 8, 32):
            health = measure(server.url + "/healthz", connections, args.seconds)
            verify = measure(
                server.url + "/api/v1/auth/verify",
                connections,
                args.seconds,
                {"Authorization": f"Bearer {key}"},
            )
            minds = measure(
                server.url + "/api/v1/minds", connections, args.seconds, {"Authorization": f"Bearer {key}"}
            )
            assert minds["errors"] == 0 and health["errors"] == 0 and verify["errors"] == 0, (
                minds,
                health,
                verify,
            )
            rows.append((connections, health, verify, minds))
            print(
                f"c={connections:>2} healthz p50 {health['p50']:.2f} | verify p50 {verify['p50']:.2f} | minds p50 {minds['p50']:.2f} ms",
                flush=True,
            )
    finally:
        server.stop()
    lines = [
        "# API overhead benchmark",
        "",
        f"Machine: {machine()}. Server: gunicorn gthread, 2 workers × 8 threads (config/gunicorn.conf.py).",
        f"Load tool: {rows[0][1]['tool']}, {args.seconds} s per run. Command: `.venv/bin/python bench/api.py`",
        "",
        "`/api/v1/auth/verify` is authentication + scope check + Redis rate limit + `lastUsedAt` bookkeeping with no",
        "other work, so `verify − healthz` is the cost of the API layer itself; `/api/v1/minds` adds the listing (page",
        "count, 10 minds with source/conversation counts, workspace usage).",
        "",
        "| clients | endpoint | req/s | p50 | p99 | p50 − healthz |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    for connections, health, verify, minds in rows:
        for name, result in (("/healthz", health), ("/api/v1/auth/verify", verify), ("/api/v1/minds", minds)):
            lines.append(
                f"| {connections} | `{name}` | {result['rps']:.0f} | {result['p50']:.2f} ms | {result['p99']:.2f} ms | "
                f"{result['p50'] - health['p50']:.2f} ms |"
            )
    publish(lines, args.write)


if __name__ == "__main__":
    main()
