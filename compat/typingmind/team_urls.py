from django.urls import path  # noqa: F401

v1: list = []
v2: list = []
