from django.urls import path  # noqa: F401

# Under /api/v1/ (chatbots) and under /api/ (integrations/webhooks/auth/verify).
v1: list = []
root: list = []
