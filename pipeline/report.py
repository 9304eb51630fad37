"""``report.html``: a page a person reads: run totals, then each article with its sentences coloured by
stance and a per-stakeholder table."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

COLOURS = {"confident": "#c8f0c8", "wary": "#fff0b3", "accusatory": "#ffc9c9", "dismissive": "#d9d2ff",
           "neutral": "#ffffff", "uncertain": "#e6e6e6"}
MAX_ARTICLES = 300  # the page stays readable; every row is in sentences.csv / .parquet


def _article_html(article_id: str, rows, summary: dict[str, Any]) -> str:
    spans = []
    for row in rows:
        tip = f"{row['stance']} {row['stance_confidence']:.2f}; sentiment {row['sentiment']}"
        if row["stakeholder"]:
            tip += f"; held by {row['stakeholder']}"
        spans.append(
            f'<span class="s {row["stance"]}" data-index="{row["sentence_index"]}" title="{html.escape(tip)}">'
            f"{html.escape(row['text'])}</span>")
    holders = "".join(
        f"<tr class='holder'><td>{html.escape(name)}</td>"
        f"<td class='{info['dominant_stance']}'>{info['dominant_stance']}</td>"
        f"<td>{', '.join(map(str, info['evidence']))}</td></tr>"
        for name, info in summary["stakeholders"].items())
    counts = ", ".join(f"{k}: {v}" for k, v in sorted(summary["stance_counts"].items()))
    table = (f"<table class='holders'><tr><th>stakeholder</th><th>dominant stance</th><th>evidence (sentence #)"
             f"</th></tr>{holders}</table>") if holders else "<p><em>no stakeholder stance found</em></p>"
    return (f"<section class='article' id='article-{html.escape(article_id)}'><h2>{html.escape(article_id)}</h2>"
            f"<p class='counts'>{counts}</p><p>{' '.join(spans)}</p>{table}</section>")


def write(path: Path, sentences: Path, articles: dict[str, Any], errors: list[dict[str, str]],
          totals: dict[str, Any], threshold: float) -> None:
    legend = "".join(f"<span class='s {k}'>{k}</span> " for k in COLOURS)
    style = "".join(f".{k}{{background:{v}}}" for k, v in COLOURS.items())
    sections = []
    by_article: dict[str, list[dict[str, Any]]] = {}
    shown = list(articles)[:MAX_ARTICLES]
    if shown and "stance" in pq.read_schema(sentences).names:
        # Only the rows of the articles shown are read: the page stays cheap however large the run.
        table = pq.read_table(sentences, filters=[("article_id", "in", shown)])
        for row in table.to_pylist():
            by_article.setdefault(row["article_id"], []).append(row)
    for article_id in shown:
        sections.append(_article_html(article_id, by_article.get(article_id, []), articles[article_id]))
    error_rows = "".join(f"<tr><td>{html.escape(e['id'])}</td><td>{html.escape(e['source'])}</td>"
                         f"<td>{html.escape(e['reason'])}</td></tr>" for e in errors)
    counts = "".join(f"<tr><td class='{k}'>{k}</td><td>{v}</td></tr>"
                     for k, v in sorted(totals["stance_counts"].items()))
    more = (f"<p>Showing the first {MAX_ARTICLES} of {len(articles)} articles.</p>"
            if len(articles) > MAX_ARTICLES else "")
    page = f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Stance report</title>
<style>body{{font-family:sans-serif;max-width:70em;margin:auto;line-height:1.6}} .s{{padding:1px 2px;border-radius:3px}}
table{{border-collapse:collapse;margin:.5em 0}} td,th{{border:1px solid #ccc;padding:2px 8px;text-align:left}}
{style}</style></head><body>
<h1>Stance and sentiment report</h1>
<p id="totals">{totals['articles']} articles, {totals['sentences']} sentences, {totals['errors']} inputs with errors.
Stance below confidence {threshold} is shown as <em>uncertain</em>.</p>
<table id="stance-totals"><tr><th>stance</th><th>sentences</th></tr>{counts}</table>
<p>Legend: {legend}</p>{more}
{''.join(sections)}
<h2>Inputs that could not be scored</h2>
<table id="errors"><tr><th>id</th><th>source</th><th>reason</th></tr>{error_rows}</table>
</body></html>"""
    path.write_text(page, encoding="utf-8")
