"""Clients of services outside the product (the LLM and speech endpoints, through the `openai` client).

The bottom layer: it reads settings and imports no app, so retrieval (knowledge), chat (conversations) and the
public page can all use it without importing each other.
"""
