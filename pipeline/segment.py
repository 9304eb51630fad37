"""Sentence splitting with character offsets into the article (pysbd keeps quotations whole).

Text without sentence ends (a scraped table, a run-on list, a 100,000-character "sentence") is bounded:
pysbd sees paragraphs in blocks of at most ``MAX_BLOCK_CHARS`` (its time and memory grow faster than the
text), and no sentence is longer than ``MAX_SENTENCE_CHARS``; longer runs are cut at white space. The
classifiers read at most ``model.max_length`` tokens (128, about 600 characters) of a sentence anyway.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from functools import lru_cache

import pysbd


@dataclasses.dataclass(frozen=True)
class Sentence:
    index: int
    start: int
    end: int
    text: str


MAX_SENTENCE_CHARS = 1000
MAX_BLOCK_CHARS = 5000
SENTENCE_END = re.compile(r"[.!?][\"'”’)]*\s")


@lru_cache(maxsize=1)
def _segmenter() -> pysbd.Segmenter:
    return pysbd.Segmenter(language="en", clean=False)


def _cut(text: str, limit: int, prefer: re.Pattern | None = None) -> Iterator[tuple[int, str]]:
    """(offset, piece) with every piece at most ``limit`` characters, cut after the last ``prefer`` match
    in the window, else at the last white space, else at the limit itself."""
    start = 0
    while len(text) - start > limit:
        window = text[start : start + limit]
        ends = [m.end() for m in prefer.finditer(window)] if prefer else []
        cut = ends[-1] if ends and ends[-1] > limit // 2 else (window.rfind(" ") + 1 or limit)
        yield start, text[start : start + cut]
        start += cut
    yield start, text[start:]


def _pysbd_sentences(text: str) -> list[str]:
    """What ``pysbd.Segmenter.segment(text)`` returns (clean=False: each sentence with the white space after
    it), with its last step done by ``str.find``. pysbd finds each sentence in the text again with a regular
    expression built from the sentence, and compiling one per sentence took over half of segmenting (and
    of ``pipeline score``'s time outside the model, 2.8 of 4.8 s on the test split's articles)."""
    sentences, previous_end = [], 0
    for sentence in _segmenter().processor(text).process():
        # pysbd: the first match of the escaped sentence plus trailing white space (``\s*``), scanning matches
        # left to right without overlap, that ends after the previous sentence did; none: the sentence is dropped.
        start = text.find(sentence)
        while start >= 0:
            end = start + len(sentence)
            while end < len(text) and text[end].isspace():
                end += 1
            if end > previous_end:
                sentences.append(text[start:end])
                previous_end = end
                break
            start = text.find(sentence, max(end, start + 1))
    return sentences


def _sentences(paragraph: str) -> Iterator[tuple[int, str]]:
    """(offset in the paragraph, sentence text) with bounded block and sentence lengths."""
    for block_start, block in _cut(paragraph, MAX_BLOCK_CHARS, SENTENCE_END):
        cursor = 0
        for piece in _pysbd_sentences(block) if block.strip() else []:
            stripped = piece.strip()
            if not stripped:
                continue
            # Offsets are found in the block itself, so they are exact even when a sentence repeats.
            found = block.find(stripped, cursor)
            if found < 0:
                raise ValueError(f"sentence splitter changed the text near offset {block_start + cursor}")
            cursor = found + len(stripped)
            for offset, part in _cut(stripped, MAX_SENTENCE_CHARS):
                if part.strip():
                    lead = len(part) - len(part.lstrip())
                    yield block_start + found + offset + lead, part.strip()


def split(article: str) -> list[Sentence]:
    """Sentences with ``article[start:end] == text`` (surrounding white space trimmed).

    Paragraphs are split first, so a sentence never runs across a blank line (a headline, a dateline
    block or a list item ends where its paragraph ends).
    """
    sentences: list[Sentence] = []
    offset = 0
    for paragraph in article.split("\n"):
        for start, text in _sentences(paragraph):
            sentences.append(Sentence(len(sentences), offset + start, offset + start + len(text), text))
        offset += len(paragraph) + 1
    return sentences
