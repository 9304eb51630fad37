import json

import pandas as pd
import pytest

from pipeline.inputs import Article, InputError, InputProblem, read_articles


def read(*paths) -> dict[str, Article | InputProblem]:
    return {item.id: item for item in read_articles([str(p) for p in paths], "id", "text", 100_000)}


def test_empty_and_missing_text_rows_become_problems(tmp_path):
    table = tmp_path / "rows.jsonl"
    table.write_text('{"id": "ok", "text": "The council met on Tuesday."}\n{"id": "blank", "text": "  "}\n'
                     '{"id": "null", "text": null}\n{"id": "nan", "text": NaN}\n{"id": "number", "text": 12}\n')
    csv = tmp_path / "rows.csv"
    csv.write_text("id,text\nc-ok,A sentence.\nc-empty,\n")
    parquet = tmp_path / "rows.parquet"
    pd.DataFrame({"id": ["p-ok", "p-none", "p-nan"], "text": ["A sentence.", None, float("nan")]}).to_parquet(parquet)
    items = read(table, csv, parquet)
    assert {k for k, v in items.items() if isinstance(v, Article)} == {"ok", "c-ok", "p-ok"}
    reasons = {k: v.reason for k, v in items.items() if isinstance(v, InputProblem)}
    assert reasons == {"blank": "empty article (no text)", "null": "text is missing (null or NaN)",
                       "nan": "text is missing (null or NaN)", "number": "text is int, not a string",
                       "c-empty": "empty article (no text)", "p-none": "text is missing (null or NaN)",
                       "p-nan": "text is missing (null or NaN)"}


def test_a_broken_jsonl_line_names_its_line_and_the_rest_is_read(tmp_path):
    table = tmp_path / "feed.jsonl"
    table.write_text('{"id": "a", "text": "First."}\n\n{"id": "b", "text": "Sec\n{"id": "c", "text": "Third."}\n')
    items = read(table)
    assert isinstance(items["a"], Article) and isinstance(items["c"], Article)
    broken = items["feed-line3"]
    assert isinstance(broken, InputProblem)
    assert broken.source == f"{table}:3" and broken.reason.startswith("invalid JSON (")


def test_parquet_text_column_that_is_not_text_is_refused(tmp_path):
    table = tmp_path / "numbers.parquet"
    pd.DataFrame({"id": ["a", "b"], "text": [1, 2]}).to_parquet(table)
    with pytest.raises(InputError, match=r"numbers\.parquet: column 'text' holds int64, not text; choose the text "
                                         r"column with --set text_column=\.\.\."):
        read(table)


def test_a_folder_with_nothing_readable_is_refused(tmp_path):
    folder = tmp_path / "scans"
    folder.mkdir()
    (folder / "page.png").write_bytes(b"\x89PNG")
    (folder / "notes.docx").write_bytes(b"PK")
    with pytest.raises(InputError, match=r"input folder .*scans holds no readable file: expected \.txt, \.html"):
        read(folder)


def test_html_page_without_main_text_is_a_problem(tmp_path):
    page = tmp_path / "menu.html"
    page.write_text("<html><body><nav><a href='/'>Home</a> | <a href='/sport'>Sport</a></nav></body></html>")
    (item,) = read(page).values()
    assert isinstance(item, InputProblem) and item.reason == "no main article text found in the HTML page"


def test_missing_text_column_in_csv_is_refused(tmp_path):
    table = tmp_path / "articles.csv"
    table.write_text("id,body\n1,Some text.\n")
    with pytest.raises(InputError, match=r"articles\.csv: missing column\(s\) \['text'\]; "
                                         r"columns are \['id', 'body'\]"):
        read(table)


def test_problem_ids_stay_unique_per_line(tmp_path):
    table = tmp_path / "x.jsonl"
    table.write_text("\n".join(["not json"] * 3) + "\n" + json.dumps({"id": "x", "text": "Fine."}) + "\n")
    assert set(read(table)) == {"x-line1", "x-line2", "x-line3", "x"}
