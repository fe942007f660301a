"""Offline answers: the best sentences of the best passages, each cited, when no LLM is configured."""

import re

from knowledge.search import SearchHit, content_words

SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")
NOT_FOUND = "I couldn't find anything about that in my knowledge sources, so I can't answer it reliably."
MAX_PASSAGES = 3


def _best_sentences(text: str, wanted: set[str], count: int) -> list[str]:
    sentences = [s.strip() for s in SENTENCE.split(" ".join(text.split())) if len(s.strip()) > 2]
    if not sentences:
        return []
    scored = sorted(range(len(sentences)), key=lambda i: (-len(wanted & content_words(sentences[i])), i))
    chosen = sorted(scored[:count])  # keep the passage's own order
    return [sentences[i] for i in chosen]


def compose(question: str, hits: list[SearchHit]) -> str:
    if not hits:
        return NOT_FOUND
    wanted = content_words(question)
    parts = []
    for number, hit in enumerate(hits[:MAX_PASSAGES], start=1):
        sentences = _best_sentences(hit.chunk.content, wanted, 2 if number == 1 else 1)
        if sentences:
            parts.append(f"{' '.join(sentences)} [{number}]")
    if not parts:
        return NOT_FOUND
    return "Here is what my sources say:\n\n" + "\n\n".join(parts)
