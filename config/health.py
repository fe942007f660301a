"""Liveness and readiness probes."""

from django.db import connection
from django.http import JsonResponse

from config.redis import redis_client


def healthz(request):
    return JsonResponse({"status": "ok"})


def readyz(request):
    down = []
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception:
        down.append("database")
    try:
        redis_client().ping()
    except Exception:
        down.append("redis")
    if down:
        return JsonResponse(
            {
                "status": "error",
                "code": "not_ready",
                "message": f"Unavailable: {', '.join(down)}.",
                "details": {"down": down},
            },
            status=503,
        )
    return JsonResponse({"status": "ok", "checks": {"database": "ok", "redis": "ok"}})
