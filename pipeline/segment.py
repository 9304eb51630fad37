"""Sentence splitting with character offsets into the article (pysbd keeps quotations whole)."""

from __future__ import annotations

import dataclasses
from functools import lru_cache

import pysbd


@dataclasses.dataclass(frozen=True)
class Sentence:
    index: int
    start: int
    end: int
    text: str


@lru_cache(maxsize=1)
def _segmenter() -> pysbd.Segmenter:
    return pysbd.Segmenter(language="en", clean=False)


def split(article: str) -> list[Sentence]:
    """Sentences with ``article[start:end] == text`` (surrounding white space trimmed).

    Paragraphs are split first, so a sentence never runs across a blank line (a headline, a dateline
    block or a list item ends where its paragraph ends).
    """
    sentences: list[Sentence] = []
    offset = 0
    for paragraph in article.split("\n"):
        cursor = 0
        for piece in _segmenter().segment(paragraph) if paragraph.strip() else []:
            stripped = piece.strip()
            if not stripped:
                continue
            # Offsets are found in the paragraph itself, so they are exact even when a sentence repeats.
            found = paragraph.find(stripped, cursor)
            if found < 0:
                raise ValueError(f"sentence splitter changed the text near offset {offset + cursor}")
            cursor = found + len(stripped)
            sentences.append(Sentence(len(sentences), offset + found, offset + cursor, stripped))
        offset += len(paragraph) + 1
    return sentences
