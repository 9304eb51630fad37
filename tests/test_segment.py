import pytest

from pipeline import segment
from pipeline.segment import split


def test_offsets_map_back_and_quotes_stay_whole():
    article = ("Harbour plan stalls\n\nPORTVALE (Test Wire) — The council met on Tuesday. “We have waited long "
               "enough. We will not wait again,” said Mayor Ana Ruiz.  Dr. Eli Moss, an economist, disagreed.\n"
               "The council met on Tuesday.")
    sentences = split(article)
    assert [s.text for s in sentences] == [
        "Harbour plan stalls",
        "PORTVALE (Test Wire) — The council met on Tuesday.",
        "“We have waited long enough. We will not wait again,” said Mayor Ana Ruiz.",
        "Dr. Eli Moss, an economist, disagreed.",
        "The council met on Tuesday.",
    ]
    for s in sentences:
        assert article[s.start : s.end] == s.text
    assert sentences[-1].start > sentences[1].start, "a repeated sentence gets its own offsets"
    assert [s.index for s in sentences] == list(range(len(sentences)))


def test_a_100000_character_sentence_is_cut_at_white_space_with_flat_memory():
    import tracemalloc

    from pipeline import segment

    article = " ".join(f"word{i % 97}" for i in range(15_000))[:100_000].rstrip()
    split(article[:1000])  # load the segmenter before measuring
    tracemalloc.start()
    sentences = split(article)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 4 * 2**20, f"splitting took {peak / 2**20:.1f} MiB above the text itself"
    assert all(len(s.text) <= segment.MAX_SENTENCE_CHARS for s in sentences)
    assert len(sentences) >= len(article) // segment.MAX_SENTENCE_CHARS
    assert all(article[s.start : s.end] == s.text for s in sentences)
    assert " ".join(s.text for s in sentences) == article, "nothing is lost, words are not cut"


def test_a_run_without_white_space_is_cut_at_the_limit():
    from pipeline import segment

    article = "x" * 2_500
    assert [len(s.text) for s in split(article)] == [segment.MAX_SENTENCE_CHARS] * 2 + [500]


def test_a_long_paragraph_of_real_sentences_keeps_its_sentences():
    sentences = [f"The council met on day {i} to review the harbour budget, officials said." for i in range(120)]
    paragraph = " ".join(sentences)
    assert len(paragraph) > 8_000
    assert [s.text for s in split(paragraph)] == sentences


@pytest.mark.parametrize("text", [
    "The minister said the talks were over. The minister said the talks were over. Then she left.",
    "Dr. Okafor met Mr. Lund at 9 a.m. in the U.S. embassy. \"We are not worried,\" he said.  It rained.",
    "Prices rose 3.5% in May.\u00a0The bank (Halvard Trust Inc.) called it \"a blip.\" Really?  Yes!\t",
    "No. 5 on the list... was missing.\nA new line. A, b. c.",
    "!", "   Leading spaces. And trailing ones.   ",
])
def test_sentences_are_what_pysbd_returns(text):
    # The sentences are found again in the text by str.find instead of pysbd's per-sentence regular
    # expressions (the slow half of segmenting): the result must stay exactly pysbd's.
    assert segment._pysbd_sentences(text) == segment._segmenter().segment(text)
