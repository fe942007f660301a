"""Page-number pagination as the contract describes: `page` from 1, `limit` 1–100 (default 20)."""

import math
from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet
from rest_framework import serializers

# Far beyond any real list, and far inside PostgreSQL's bigint OFFSET (page 10**20 used to overflow it: a 500).
MAX_PAGE = 1_000_000
MAX_OFFSET = 100_000_000


class PageQuerySerializer(serializers.Serializer):
    page = serializers.IntegerField(min_value=1, max_value=MAX_PAGE, default=1)
    limit = serializers.IntegerField(min_value=1, max_value=100, default=20)


@dataclass
class Page:
    items: list[Any]
    page: int
    limit: int
    total: int

    @property
    def meta(self) -> dict[str, int]:
        return {
            "page": self.page,
            "limit": self.limit,
            "total": self.total,
            "totalPages": math.ceil(self.total / self.limit) if self.total else 0,
        }


def paginate(queryset: QuerySet, *, page: int, limit: int) -> Page:
    total = queryset.count()
    offset = (page - 1) * limit
    return Page(items=list(queryset[offset : offset + limit]), page=page, limit=limit, total=total)
