"""Reading article collections: .txt, .html, .jsonl, .csv and .parquet files or folders of them.

Articles are streamed one at a time. An input that cannot be scored (empty, binary, not UTF-8, over
the size limit, no main text) is yielded as an ``InputProblem`` so that the batch goes on.
"""

from __future__ import annotations

import dataclasses
import html
import json
import math
import re
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.errors import PipelineError

SUPPORTED = (".txt", ".html", ".htm", ".jsonl", ".csv", ".parquet")
# Optional columns of table inputs, carried to the outputs: the first one present is used.
TITLE_COLUMNS = ("title", "headline")
OUTLET_COLUMNS = ("outlet", "source", "domain")
DATE_COLUMNS = ("date", "published", "published_at")
TITLE_CHARS = 200
MIN_HTML_WORDS = 5
SENTENCE_END = re.compile(r"[.!?][\"'”’)]*(\s|$)")


@dataclasses.dataclass(frozen=True)
class Article:
    """One article; ``source`` is where it was read from, ``outlet`` the publisher or domain given with it."""

    id: str
    text: str
    source: str
    title: str = ""
    outlet: str = ""
    date: str = ""


@dataclasses.dataclass(frozen=True)
class InputProblem:
    id: str
    source: str
    reason: str


class InputError(PipelineError, ValueError):
    """An input path or table cannot be read at all; the message names it and what to do."""


def _first_line(text: str) -> str:
    line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return line if len(line) <= TITLE_CHARS else line[: TITLE_CHARS - 1].rstrip() + "…"


def _check_text(article_id: str, source: str, text: object, max_bytes: int, meta: dict[str, str] | None = None
                ) -> Article | InputProblem:
    if text is None or (isinstance(text, float) and math.isnan(text)):
        return InputProblem(article_id, source, "text is missing (null or NaN)")
    if not isinstance(text, str):
        return InputProblem(article_id, source, f"text is {type(text).__name__}, not a string")
    if len(text.encode("utf-8")) > max_bytes:
        return InputProblem(article_id, source, f"article is over the {max_bytes:,}-byte limit; split it")
    if "\x00" in text:
        return InputProblem(article_id, source, "binary content (NUL bytes), not article text")
    if not text.strip():
        return InputProblem(article_id, source, "empty article (no text)")
    meta = meta or {}
    return Article(article_id, text, source, meta.get("title") or _first_line(text), meta.get("outlet", ""),
                   meta.get("date", ""))


def _decode(path: Path, max_bytes: int) -> str | InputProblem:
    size = path.stat().st_size
    if size > max_bytes:
        return InputProblem(path.stem, str(path), f"file is {size:,} bytes, over the {max_bytes:,}-byte limit")
    raw = path.read_bytes()
    if b"\x00" in raw:
        return InputProblem(path.stem, str(path), "binary file (NUL bytes), not article text")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        return InputProblem(path.stem, str(path), f"not UTF-8 (byte {err.start}); re-save the file as UTF-8")


def _html_text(html: str) -> str | None:
    """The page's main text, or None when what the extractor found is no prose (a menu, a link bar)."""
    import trafilatura

    text = trafilatura.extract(html, include_comments=False, include_tables=False, favor_precision=True)
    # The extractor's fallbacks return a navigation bar when a page has no article: prose has a sentence end.
    if not text or len(text.split()) < MIN_HTML_WORDS or not SENTENCE_END.search(text):
        return None
    return text


def _html_title(page: str) -> str:
    found = re.search(r"<title[^>]*>(.*?)</title>", page, flags=re.I | re.S)
    return " ".join(html.unescape(found.group(1)).split())[:TITLE_CHARS] if found else ""


def _meta(row: dict[str, object]) -> dict[str, str]:
    """title, outlet and date from the optional columns of a table row (empty when absent)."""
    found = {}
    for key, names in (("title", TITLE_COLUMNS), ("outlet", OUTLET_COLUMNS), ("date", DATE_COLUMNS)):
        value = next((row[n] for n in names if row.get(n) not in (None, "")), "")
        found[key] = " ".join(str(value).split())[:TITLE_CHARS]
    return found


def _table_rows(path: Path, id_column: str, text_column: str
                ) -> Iterator[tuple[str, object, str, dict[str, str]] | InputProblem]:
    """(id, text, where, meta) per row, streamed: JSON Lines line by line, CSV and Parquet in chunks."""
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        with path.open(encoding="utf-8", errors="strict") as handle:
            for line_no, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                where = f"{path}:{line_no}"
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as err:
                    yield InputProblem(f"{path.stem}-line{line_no}", where, f"invalid JSON ({err.msg})")
                    continue
                if not isinstance(row, dict) or id_column not in row or text_column not in row:
                    yield InputProblem(f"{path.stem}-line{line_no}", where, f"needs keys {id_column!r} and "
                                       f"{text_column!r} (or --set id_column=... --set text_column=...)")
                    continue
                yield str(row[id_column]), row[text_column], where, _meta(row)
        return
    if suffix == ".csv":
        import pandas as pd

        chunks = pd.read_csv(path, chunksize=256, dtype=str, keep_default_na=False)
        columns_checked = False
        offset = 0
        for chunk in chunks:
            if not columns_checked:
                _require_columns(path, list(chunk.columns), id_column, text_column)
                columns_checked = True
            for i, row in enumerate(chunk.to_dict("records")):
                yield str(row[id_column]), row[text_column], f"{path}:row {offset + i + 1}", _meta(row)
            offset += len(chunk)
        return
    parquet = pq.ParquetFile(path)
    _check_parquet(path, parquet, id_column, text_column)
    optional = [n for n in (*TITLE_COLUMNS, *OUTLET_COLUMNS, *DATE_COLUMNS) if n in parquet.schema_arrow.names]
    columns = list(dict.fromkeys([id_column, text_column, *optional]))
    offset = 0
    for batch in parquet.iter_batches(batch_size=256, columns=columns):
        for i, row in enumerate(batch.to_pylist()):
            yield str(row[id_column]), row[text_column], f"{path}:row {offset + i + 1}", _meta(row)
        offset += batch.num_rows


def _require_columns(path: Path, columns: list[str], id_column: str, text_column: str) -> None:
    missing = [c for c in (id_column, text_column) if c not in columns]
    if missing:
        raise InputError(f"{path}: missing column(s) {missing}; columns are {columns}. "
                         "Rename them or pass --set id_column=... --set text_column=...")


def _check_parquet(path: Path, parquet: pq.ParquetFile, id_column: str, text_column: str) -> None:
    _require_columns(path, parquet.schema_arrow.names, id_column, text_column)
    text_type = parquet.schema_arrow.field(text_column).type
    if not (pa.types.is_string(text_type) or pa.types.is_large_string(text_type)):
        raise InputError(f"{path}: column {text_column!r} holds {text_type}, not text; "
                         "choose the text column with --set text_column=...")


def check_tables(paths: list[str], id_column: str, text_column: str) -> list[Path]:
    """The input files, after checking what can be checked before any model loads: every path exists,
    folders hold something readable, CSV headers and Parquet schemas have the id and text columns."""
    import pandas as pd

    files = expand(paths)
    for path in files:
        suffix = path.suffix.lower()
        try:
            if suffix == ".csv":
                _require_columns(path, list(pd.read_csv(path, nrows=0).columns), id_column, text_column)
            elif suffix == ".parquet":
                _check_parquet(path, pq.ParquetFile(path), id_column, text_column)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, pa.ArrowInvalid, UnicodeDecodeError) as err:
            raise InputError(f"{path}: cannot be read as {suffix[1:]}: {err}") from err
    return files


def expand(paths: list[str]) -> list[Path]:
    files = []
    for name in paths:
        path = Path(name)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUPPORTED)
            if not found:
                raise InputError(f"input folder {name} holds no readable file: expected {', '.join(SUPPORTED)}")
            files += found
        elif path.is_file():
            files.append(path)
        else:
            raise InputError(f"input {name} does not exist")
    return files


def read_articles(paths: list[str], id_column: str, text_column: str, max_bytes: int
                  ) -> Iterator[Article | InputProblem]:
    for path in expand(paths):
        suffix = path.suffix.lower()
        if suffix not in SUPPORTED:
            yield InputProblem(path.stem, str(path), f"unsupported file type {suffix!r}; use {', '.join(SUPPORTED)}")
        elif suffix in (".txt", ".html", ".htm"):
            text = _decode(path, max_bytes)
            if isinstance(text, InputProblem):
                yield text
                continue
            meta = {}
            if suffix != ".txt":
                extracted = _html_text(text)
                if not extracted:
                    yield InputProblem(path.stem, str(path), "no main article text found in the HTML page")
                    continue
                meta = {"title": _html_title(text)}
                text = extracted
            yield _check_text(path.stem, str(path), text, max_bytes, meta)
        else:
            try:
                for row in _table_rows(path, id_column, text_column):
                    yield row if isinstance(row, InputProblem) else _check_text(row[0], row[2], row[1], max_bytes,
                                                                                row[3])
            except UnicodeDecodeError as err:
                yield InputProblem(path.stem, str(path), f"not UTF-8 (byte {err.start}); re-save as UTF-8")
