"""``report.html`` and ``collection.json``: what a person reads after scoring.

The page opens with a collection overview (who stands where across all articles, the stance mix per
outlet and over time, drawn as inline SVG), then every article: title, sentences coloured by stance
with sentiment beside them, filters by stance and stakeholder, and a search box. The articles are
embedded as compact JSON and shown a page at a time by a small inline script, so the page stays
usable with thousands of articles and needs no network access. The sentences are streamed from
``sentences.parquet`` while the page is written: memory does not grow with the number of sentences.
"""

from __future__ import annotations

import collections
import datetime
import html
import json
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import pyarrow.parquet as pq

from pipeline import attribution

COLOURS = {"confident": "#c8f0c8", "wary": "#fff0b3", "accusatory": "#ffc9c9", "dismissive": "#d9d2ff",
           "neutral": "#ffffff", "uncertain": "#e6e6e6"}
BAR_COLOURS = {"confident": "#3f9e4d", "wary": "#e0a800", "accusatory": "#d64545", "dismissive": "#7b61c9",
               "neutral": "#9fb3bf", "uncertain": "#d0d0d0"}
NO_STANCE = ("neutral", "uncertain")  # as in score.summarize_article: not a stakeholder's stance
SHOWN_STAKEHOLDERS = 30  # the overview's table; collection.json lists every stakeholder
SHOWN_OUTLETS = 20
SHOWN_EVIDENCE = 5
PAGE_SIZE = 20
BATCH_ROWS = 4096


def _stances(counts: dict[str, int]) -> list[str]:
    """Known stances in a fixed order, then any other label the model produced."""
    return [*COLOURS, *sorted(set(counts) - set(COLOURS))]


def _dominant(counts: dict[str, int], confidence: dict[str, float]) -> str:
    return max(counts, key=lambda s: (counts[s], confidence.get(s, 0.0)))


def _period(dates: list[datetime.date]) -> tuple[str, Any]:
    """Day, month or year buckets: the finest that keeps the time chart under about 60 bars."""
    span = (max(dates) - min(dates)).days if dates else 0
    if span <= 60:
        return "day", lambda d: d.isoformat()
    if span <= 5 * 365:
        return "month", lambda d: d.strftime("%Y-%m")
    return "year", lambda d: str(d.year)


def _parse_date(value: str) -> datetime.date | None:
    try:
        return datetime.date.fromisoformat(value.strip()[:10])
    except ValueError:
        return None


def collection(sentences: Path, articles: dict[str, Any], totals: dict[str, Any]) -> dict[str, Any]:
    """The overview of a scored collection (what ``collection.json`` holds).

    Stakeholders are grouped across articles by ``attribution.normalize``, as the per-article summary
    groups them, and count only sentences with a stance (not neutral or uncertain).
    """
    holders: dict[str, dict[str, Any]] = {}
    schema = pq.read_schema(sentences).names
    if "stance" in schema:
        columns = ["article_id", "sentence_index", "stance", "stance_confidence", "stakeholder"]
        for batch in pq.ParquetFile(sentences).iter_batches(batch_size=BATCH_ROWS, columns=columns):
            data = batch.to_pydict()
            for article_id, index, stance, confidence, name in zip(*(data[c] for c in columns), strict=True):
                if not name or stance in NO_STANCE:
                    continue
                key = attribution.normalize(name)
                entry = holders.setdefault(key, {"name": name, "articles": set(), "sentences": 0,
                                                 "stances": collections.Counter(),
                                                 "confidence": collections.Counter(), "rows": []})
                if len(name) > len(entry["name"]):
                    entry["name"] = name
                entry["articles"].add(article_id)
                entry["sentences"] += 1
                entry["stances"][stance] += 1
                entry["confidence"][stance] += confidence
                entry["rows"].append((article_id, int(index), stance))
    stakeholders = []
    for key, entry in holders.items():
        dominant = _dominant(entry["stances"], entry["confidence"])
        stakeholders.append({
            "name": entry["name"], "key": key, "articles": len(entry["articles"]), "sentences": entry["sentences"],
            "stances": dict(entry["stances"]), "dominant_stance": dominant,
            "evidence": [{"article_id": a, "sentence_index": i} for a, i, s in entry["rows"] if s == dominant]})
    stakeholders.sort(key=lambda h: (-h["sentences"], -h["articles"], h["key"]))

    by_outlet: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    outlet_articles: collections.Counter = collections.Counter()
    dated: list[tuple[datetime.date, dict[str, int]]] = []
    for summary in articles.values():
        if summary.get("outlet"):
            by_outlet[summary["outlet"]].update(summary["stance_counts"])
            outlet_articles[summary["outlet"]] += 1
        day = _parse_date(summary.get("date", ""))
        if day is not None:
            dated.append((day, summary["stance_counts"]))
    granularity, bucket = _period([d for d, _ in dated])
    by_time: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    time_articles: collections.Counter = collections.Counter()
    for day, counts in sorted(dated, key=lambda item: item[0]):
        by_time[bucket(day)].update(counts)
        time_articles[bucket(day)] += 1
    return {
        "articles": totals["articles"], "sentences": totals["sentences"], "errors": totals["errors"],
        "stance_counts": totals["stance_counts"], "stakeholders": stakeholders,
        "by_outlet": [{"outlet": o, "articles": outlet_articles[o], "stance_counts": dict(c)}
                      for o, c in sorted(by_outlet.items(), key=lambda item: (-sum(item[1].values()), item[0]))],
        "over_time": {"granularity": granularity if dated else None, "undated": len(articles) - len(dated),
                      "periods": [{"period": p, "articles": time_articles[p], "stance_counts": dict(c)}
                                  for p, c in by_time.items()]},
    }


# ---------------------------------------------------------------- overview HTML


def _bar(counts: dict[str, int], width: int = 240, height: int = 14) -> str:
    """A 100% stacked bar as inline SVG; each segment's tooltip gives its count and share."""
    total = sum(counts.values()) or 1
    x, rects = 0.0, []
    for stance in _stances(counts):
        n = counts.get(stance, 0)
        if not n:
            continue
        w = width * n / total
        rects.append(f'<rect x="{x:.1f}" width="{w:.1f}" height="{height}" fill="{BAR_COLOURS.get(stance, "#999")}">'
                     f"<title>{html.escape(stance)}: {n} ({100 * n / total:.0f}%)</title></rect>")
        x += w
    return (f'<svg class="bar" width="{width}" height="{height}" role="img" aria-label="stance mix">'
            f'{"".join(rects)}</svg>')


def _evidence_href(article_id: str, index: int) -> str:
    return f"#s/{urllib.parse.quote(article_id, safe='')}/{index}"


def _stakeholder_rows(stakeholders: list[dict[str, Any]], titles: dict[str, str]) -> str:
    rows = []
    for h in stakeholders[:SHOWN_STAKEHOLDERS]:
        links = " ".join(
            f'<a class="ev" href="{_evidence_href(e["article_id"], e["sentence_index"])}" '
            f'title="{html.escape(titles.get(e["article_id"], e["article_id"]))}">'
            f'{html.escape(e["article_id"])}#{e["sentence_index"]}</a>' for e in h["evidence"][:SHOWN_EVIDENCE])
        more = len(h["evidence"]) - SHOWN_EVIDENCE
        links += f" <span class='more'>+{more} more</span>" if more > 0 else ""
        stance_attrs = "".join(f' data-{html.escape(s)}="{n}"' for s, n in h["stances"].items())
        rows.append(
            f'<tr class="holder-row" data-key="{html.escape(h["key"])}" data-articles="{h["articles"]}" '
            f'data-sentences="{h["sentences"]}"{stance_attrs}><td>{html.escape(h["name"])}</td>'
            f'<td class="num">{h["articles"]}</td><td class="num">{h["sentences"]}</td><td>{_bar(h["stances"])}</td>'
            f'<td><span class="s {h["dominant_stance"]}">{h["dominant_stance"]}</span></td><td>{links}</td></tr>')
    return "".join(rows)


def _time_chart(periods: list[dict[str, Any]], height: int = 160) -> str:
    """Stacked columns of the stance mix per period (shares), one column per period."""
    step = max(8, min(40, 900 // max(len(periods), 1)))
    width = step * len(periods) + 40
    parts = []
    for i, period in enumerate(periods):
        counts = period["stance_counts"]
        total = sum(counts.values()) or 1
        y = float(height)
        x = 40 + i * step
        for stance in _stances(counts):
            n = counts.get(stance, 0)
            if not n:
                continue
            h = height * n / total
            y -= h
            parts.append(f'<rect x="{x}" y="{y:.1f}" width="{step - 2}" height="{h:.1f}" '
                         f'fill="{BAR_COLOURS.get(stance, "#999")}"><title>{html.escape(period["period"])}: '
                         f'{html.escape(stance)} {n} of {total} sentences ({period["articles"]} articles)'
                         "</title></rect>")
    first, last = html.escape(periods[0]["period"]), html.escape(periods[-1]["period"])
    axis = (f'<text x="40" y="{height + 14}" font-size="11">{first}</text>'
            f'<text x="{width}" y="{height + 14}" font-size="11" text-anchor="end">{last}</text>'
            f'<text x="34" y="10" font-size="11" text-anchor="end">100%</text>'
            f'<text x="34" y="{height}" font-size="11" text-anchor="end">0%</text>')
    return (f'<svg id="time-chart" width="{width + 10}" height="{height + 20}" role="img" '
            f'aria-label="stance mix over time">{"".join(parts)}{axis}</svg>')


def _overview_html(overview: dict[str, Any], articles: dict[str, Any]) -> str:
    titles = {a: s.get("title") or a for a, s in articles.items()}
    counts = overview["stance_counts"]
    stance_rows = "".join(f"<tr><td><span class='s {k}'>{k}</span></td><td class='num'>{counts.get(k, 0)}</td></tr>"
                          for k in _stances(counts) if counts.get(k, 0))
    holders = overview["stakeholders"]
    parts = [f"""<section id="overview"><h2>Collection overview</h2>
<div class="row"><table id="stance-totals"><tr><th>stance</th><th>sentences</th></tr>{stance_rows}</table>
<div><p>All sentences</p>{_bar(counts, 420, 22)}</div></div>"""]
    if overview["by_outlet"]:
        rows = "".join(
            f"<tr class='outlet-row' data-outlet='{html.escape(o['outlet'])}' data-articles='{o['articles']}'>"
            f"<td>{html.escape(o['outlet'])}</td><td class='num'>{o['articles']}</td>"
            f"<td class='num'>{sum(o['stance_counts'].values())}</td><td>{_bar(o['stance_counts'])}</td></tr>"
            for o in overview["by_outlet"][:SHOWN_OUTLETS])
        parts.append(f"<h3>Stance mix per source</h3><table id='by-outlet'><tr><th>source</th><th>articles</th>"
                     f"<th>sentences</th><th>stance mix</th></tr>{rows}</table>")
    time = overview["over_time"]
    if time["periods"]:
        undated = f", {time['undated']} articles without a date left out" if time["undated"] else ""
        parts.append(f"<h3>Stance mix over time</h3><p>Share of sentences per {time['granularity']}{undated}; "
                     f"hover a column for its counts.</p>{_time_chart(time['periods'])}")
    parts.append("<h3>Stakeholders</h3>")
    if holders:
        shown = min(len(holders), SHOWN_STAKEHOLDERS)
        parts.append(
            f"<p>{len(holders)} stakeholders hold a stance across the collection (neutral and uncertain sentences "
            f"are not counted); the {shown} with the most sentences are shown, all are in "
            f"<code>collection.json</code>. Evidence links open the sentences of the dominant stance.</p>"
            f"<table id='stakeholders'><tr><th>stakeholder</th><th>articles</th><th>sentences</th>"
            f"<th>stance mix</th><th>dominant</th><th>evidence</th></tr>{_stakeholder_rows(holders, titles)}</table>")
    else:
        parts.append("<p><em>no stakeholder stance found</em></p>")
    parts.append("</section>")
    return "".join(parts)


# ---------------------------------------------------------------- article data


def _groups(sentences: Path, columns: list[str]) -> Iterator[tuple[str, dict[str, list[Any]]]]:
    """The sentences of one article at a time, streamed in file order (an article's rows are contiguous)."""
    current: str | None = None
    rows: dict[str, list[Any]] = {c: [] for c in columns}
    for batch in pq.ParquetFile(sentences).iter_batches(batch_size=BATCH_ROWS, columns=columns):
        data = batch.to_pydict()
        for i, article_id in enumerate(data["article_id"]):
            if article_id != current and current is not None:
                yield current, rows
                rows = {c: [] for c in columns}
            current = article_id
            for c in columns:
                rows[c].append(data[c][i])
    if current is not None:
        yield current, rows


def _article_record(article_id: str, summary: dict[str, Any], rows: dict[str, list[Any]] | None,
                    probs: list[str], codes: dict[str, dict[str, int]]) -> dict[str, Any]:
    """Compact JSON of one article: short keys, sentences as arrays, labels as codes."""
    def code(kind: str, label: str) -> int:
        return codes[kind].setdefault(label, len(codes[kind]))

    sentences = []
    if rows:
        p = np.array([rows[c] for c in probs], dtype=float).T if probs else np.zeros((len(rows["text"]), 0))
        order = np.argsort(-p, axis=1) if probs else None
        labels = [c.removeprefix("prob_") for c in probs]
        for i, text in enumerate(rows["text"]):
            ranked = [[code("stance", labels[j]), round(float(p[i, j]), 2)] for j in order[i, :2]] if probs else []
            sentences.append([rows["sentence_index"][i], code("stance", rows["stance"][i]),
                              round(rows["stance_confidence"][i], 2), code("sentiment", rows["sentiment"][i]),
                              round(rows["sentiment_confidence"][i], 2), rows["stakeholder"][i], ranked, text])
    holders = [[name, info["dominant_stance"], info["evidence"]] for name, info in summary["stakeholders"].items()]
    present = {rows["stance"][i] for i in range(len(rows["text"]))} if rows else set()
    return {"id": article_id, "t": summary.get("title") or article_id, "o": summary.get("outlet", ""),
            "d": summary.get("date", ""), "c": summary["stance_counts"], "h": holders,
            "k": sorted({attribution.normalize(n) for n in summary["stakeholders"]}),
            "st": sorted(code("stance", s) for s in present), "s": sentences}


def _json(value: Any) -> str:
    # "<" escaped so that no "</script>" inside the text can end the data block.
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).replace("<", "\\u003c")


def _write_articles(handle: TextIO, sentences: Path, articles: dict[str, Any]) -> dict[str, dict[str, int]]:
    codes: dict[str, dict[str, int]] = {"stance": {s: i for i, s in enumerate(COLOURS)}, "sentiment": {}}
    schema = pq.read_schema(sentences).names
    handle.write('<script type="application/json" id="articles-data">[')
    first, seen = True, set()
    if "stance" in schema:
        probs = [c for c in schema if c.startswith("prob_")]
        columns = ["article_id", "sentence_index", "text", "stance", "stance_confidence", "sentiment",
                   "sentiment_confidence", "stakeholder", *probs]
        for article_id, rows in _groups(sentences, columns):
            if article_id not in articles or article_id in seen:
                continue
            seen.add(article_id)
            handle.write(("" if first else ",\n") + _json(_article_record(article_id, articles[article_id], rows,
                                                                        probs, codes)))
            first = False
    for article_id, summary in articles.items():  # articles without any sentence
        if article_id not in seen:
            handle.write(("" if first else ",\n") + _json(_article_record(article_id, summary, None, [], codes)))
            first = False
    handle.write("]</script>\n")
    return codes


# ---------------------------------------------------------------- page

STYLE = """body{font-family:sans-serif;max-width:76em;margin:auto;line-height:1.5;padding:0 1em}
.s{padding:1px 2px;border-radius:3px} .num{text-align:right}
table{border-collapse:collapse;margin:.5em 0}
td,th{border:1px solid #ccc;padding:2px 8px;text-align:left;vertical-align:top}
.row{display:flex;gap:2em;align-items:center} svg.bar{vertical-align:middle}
.ev{margin-right:.4em;font-size:90%} .more{color:#777;font-size:90%}
#controls{position:sticky;top:0;background:#fafafa;border-bottom:1px solid #ddd;padding:.5em 0;z-index:1}
#controls label{margin-right:1em} .pager button{margin:0 .3em}
.article{border-top:2px solid #ddd;margin-top:1em} .article h3{margin-bottom:.2em} .meta{color:#555;font-size:90%}
.senti{font-size:75%;padding:0 3px;margin:0 2px;border-radius:6px;border:1px solid #bbb;color:#333;vertical-align:1px}
.senti.positive{background:#dff5df} .senti.negative{background:#fbdcdc} .senti.neutral{background:#f2f2f2}
.runner{font-size:75%;color:#555;font-style:italic} .dim{opacity:.35} .hit{outline:2px solid #1e6fd9}
"""

SCRIPT = r"""
(function () {
  const data = JSON.parse(document.getElementById('articles-data').textContent);
  const codes = JSON.parse(document.getElementById('codes-data').textContent);
  const stances = Object.keys(codes.stance).sort((a, b) => codes.stance[a] - codes.stance[b]);
  const sentiments = Object.keys(codes.sentiment).sort((a, b) => codes.sentiment[a] - codes.sentiment[b]);
  const PAGE = PAGE_SIZE_VALUE;
  const $ = (id) => document.getElementById(id);
  const stanceSel = $('filter-stance'), holderSel = $('filter-stakeholder'), search = $('search');
  let page = 0, matches = data;
  const hay = new Map();
  function haystack(a) {
    if (!hay.has(a.id)) hay.set(a.id, (a.t + ' ' + a.o + ' ' + a.s.map((s) => s[7]).join(' ')).toLowerCase());
    return hay.get(a.id);
  }
  function el(tag, attrs, text) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function applyFilters() {
    const st = stanceSel.value === '' ? null : codes.stance[stanceSel.value];
    const holder = holderSel.value, q = search.value.trim().toLowerCase();
    matches = data.filter((a) => (st === null || a.st.includes(st)) && (!holder || a.k.includes(holder))
                                 && (!q || haystack(a).includes(q)));
    page = 0;
    render();
  }
  function sentence(a, s, st) {
    const [index, stance, conf, senti, sconf, holder, ranked, text] = s;
    const name = stances[stance];
    const span = el('span', {class: 's ' + name, id: 's-' + a.id + '-' + index, 'data-index': index,
                             'data-stance': name});
    let tip = name + ' ' + conf.toFixed(2) + '; sentiment ' + sentiments[senti] + ' ' + sconf.toFixed(2);
    if (ranked.length > 1) tip += '; runner-up ' + stances[ranked[1][0]] + ' ' + ranked[1][1].toFixed(2);
    if (holder) tip += '; held by ' + holder;
    span.title = tip;
    span.append(text);
    if (name === 'uncertain' && ranked.length > 1) {
      span.append(' ', el('span', {class: 'runner'}, '(' + stances[ranked[0][0]] + ' ' + ranked[0][1].toFixed(2)
                          + ' / runner-up ' + stances[ranked[1][0]] + ' ' + ranked[1][1].toFixed(2) + ')'));
    }
    span.append(el('span', {class: 'senti ' + sentiments[senti], title: 'sentiment ' + sentiments[senti]},
                   sentiments[senti]));
    if (st !== null && stance !== st) span.classList.add('dim');
    return span;
  }
  function article(a) {
    const sec = el('section', {class: 'article', id: 'article-' + a.id, 'data-id': a.id});
    sec.append(el('h3', {}, a.t));
    const meta = [a.id, a.o, a.d].filter(Boolean).join(' · ') + ' — '
      + Object.entries(a.c).map(([k, v]) => k + ': ' + v).join(', ');
    sec.append(el('p', {class: 'meta'}, meta));
    const st = stanceSel.value === '' ? null : codes.stance[stanceSel.value];
    const p = el('p');
    a.s.forEach((s) => { p.append(sentence(a, s, st), ' '); });
    sec.append(p);
    if (a.h.length) {
      const t = el('table', {class: 'holders'});
      const head = el('tr');
      ['stakeholder', 'dominant stance', 'evidence (sentence #)'].forEach((h) => head.append(el('th', {}, h)));
      t.append(head);
      a.h.forEach(([name, dominant, evidence]) => {
        const tr = el('tr', {class: 'holder'});
        tr.append(el('td', {}, name), el('td', {class: dominant}, dominant), el('td', {}, evidence.join(', ')));
        t.append(tr);
      });
      sec.append(t);
    }
    return sec;
  }
  function render() {
    const pages = Math.max(1, Math.ceil(matches.length / PAGE));
    page = Math.min(page, pages - 1);
    const list = $('articles');
    list.replaceChildren(...matches.slice(page * PAGE, (page + 1) * PAGE).map(article));
    const first = matches.length ? page * PAGE + 1 : 0, last = Math.min(matches.length, (page + 1) * PAGE);
    $('match-count').textContent = matches.length + ' of ' + data.length + ' articles match';
    $('match-count').dataset.count = matches.length;
    document.querySelectorAll('.page-label').forEach((e) => {
      e.textContent = 'articles ' + first + '–' + last + ' · page ' + (page + 1) + ' of ' + pages;
    });
    document.querySelectorAll('.prev').forEach((b) => { b.disabled = page === 0; });
    document.querySelectorAll('.next').forEach((b) => { b.disabled = page >= pages - 1; });
  }
  function go(delta) { page += delta; render(); $('controls').scrollIntoView(); }
  document.querySelectorAll('.prev').forEach((b) => b.addEventListener('click', () => go(-1)));
  document.querySelectorAll('.next').forEach((b) => b.addEventListener('click', () => go(1)));
  stanceSel.addEventListener('change', applyFilters);
  holderSel.addEventListener('change', applyFilters);
  search.addEventListener('input', applyFilters);
  function showSentence() {
    const m = location.hash.match(/^#s\/([^/]+)\/(\d+)$/);
    if (!m) return;
    const id = decodeURIComponent(m[1]);
    stanceSel.value = ''; holderSel.value = ''; search.value = '';
    matches = data;
    const pos = data.findIndex((a) => a.id === id);
    if (pos < 0) return;
    page = Math.floor(pos / PAGE);
    render();
    const target = document.getElementById('s-' + id + '-' + m[2]);
    if (target) { target.classList.add('hit'); target.scrollIntoView({block: 'center'}); }
  }
  window.addEventListener('hashchange', showSentence);
  render();
  showSentence();
})();
"""


def _controls(overview: dict[str, Any], stance_counts: dict[str, int]) -> str:
    stance_options = "".join(f"<option value='{html.escape(s)}'>{html.escape(s)}</option>"
                             for s in _stances(stance_counts) if stance_counts.get(s))
    holder_options = "".join(f"<option value='{html.escape(h['key'])}'>{html.escape(h['name'])} ({h['articles']})"
                             f"</option>" for h in overview["stakeholders"][:200])
    pager = ("<span class='pager'><button class='prev'>&larr; previous</button><span class='page-label'></span>"
             "<button class='next'>next &rarr;</button></span>")
    return (f"<div id='controls'><label>Stance <select id='filter-stance'><option value=''>any</option>"
            f"{stance_options}</select></label><label>Stakeholder <select id='filter-stakeholder'>"
            f"<option value=''>any</option>{holder_options}</select></label>"
            f"<label>Search <input id='search' type='search' placeholder='words in title or text'></label>"
            f"<span id='match-count'></span><br>{pager}</div>")


def write(path: Path, sentences: Path, articles: dict[str, Any], errors: list[dict[str, str]],
          totals: dict[str, Any], threshold: float, overview: dict[str, Any]) -> None:
    legend = "".join(f"<span class='s {k}'>{k}</span> " for k in COLOURS)
    style = "".join(f".{k}{{background:{v}}}" for k, v in COLOURS.items())
    error_rows = "".join(f"<tr><td>{html.escape(e['id'])}</td><td>{html.escape(e['source'])}</td>"
                         f"<td>{html.escape(e['reason'])}</td></tr>" for e in errors)
    with path.open("w", encoding="utf-8") as handle:
        handle.write(f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Stance report</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{STYLE}{style}</style></head><body>
<h1>Stance and sentiment report</h1>
<p id="totals">{totals['articles']} articles, {totals['sentences']} sentences, {totals['errors']} inputs with errors.
Stance below confidence {threshold} is shown as <em>uncertain</em> with the model's two best labels.
Hover a sentence for its confidence, sentiment, runner-up label and stakeholder.</p>
<p>Legend: {legend}</p>
{_overview_html(overview, articles)}
<h2>Articles</h2>
{_controls(overview, totals['stance_counts'])}
<div id="articles"></div>
<div class="pager-bottom"><span class='pager'><button class='prev'>&larr; previous</button>
<span class='page-label'></span><button class='next'>next &rarr;</button></span></div>
<h2>Inputs that could not be scored</h2>
<table id="errors"><tr><th>id</th><th>source</th><th>reason</th></tr>{error_rows}</table>
""")
        codes = _write_articles(handle, sentences, articles)
        handle.write(f'<script type="application/json" id="codes-data">{_json(codes)}</script>\n')
        handle.write(f"<script>{SCRIPT.replace('PAGE_SIZE_VALUE', str(PAGE_SIZE))}</script>\n</body></html>\n")
