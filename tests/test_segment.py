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
