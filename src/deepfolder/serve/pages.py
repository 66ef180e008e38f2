"""The viewer's HTML pages, written as plain strings (every value escaped).

The report page embeds the body of the run's ``report.html`` and marks every citation
link (``<a href="#E…">``) with the support verdict of the sentence it ends, from
``validation.json`` (:func:`annotate_citations`); ``static/serve.js`` opens the evidence
pane on click. Pages carry no inline script: the app's Content-Security-Policy allows
scripts from ``/static`` only, so markup a report brings along cannot run code.
"""

from __future__ import annotations

import json
import re
from html import escape, unescape
from typing import Any

from deepfolder.records import EVIDENCE_ID_PATTERN
from deepfolder.serve.catalog import BATCH_TABLE_COLUMNS, BatchDir, RunCard, RunDir, RunFileError

CITE_LINK_RE = re.compile(r'<a href="#(' + EVIDENCE_ID_PATTERN + r')">')
REFERENCE_ID_RE = re.compile(r"<li>\[(" + EVIDENCE_ID_PATTERN + r")\]")
"""The id opening a line of the generated reference list."""
BODY_RE = re.compile(r"<body[^>]*>(.*)</body>", re.DOTALL | re.IGNORECASE)
TAG_RE = re.compile(r"<[^>]+>")
SENTENCE_TAIL = 12
"""Characters of a checked sentence's end looked for just before a citation link."""
PRECEDING_HTML = 1500
"""HTML before a citation link searched for the sentence it ends."""
VERDICT_RANK = {"unsupported": 0, "weak": 1, "supported": 2}


def layout(title: str, body: str, *, run: RunDir | None = None, tab: str = "") -> str:
    nav = ['<a href="/">Runs</a>', '<a href="/new">New run</a>']
    if run is not None:
        for name, href in (("Report", ""), ("Checks", "/checks"), ("Trace", "/trace")):
            cls = ' class="here"' if tab == name else ""
            nav.append(f'<a{cls} href="/runs/{run.id}{href}">{name}</a>')
    return (
        '<!DOCTYPE html>\n<html>\n<head>\n<meta charset="utf-8">\n'
        f"<title>{escape(title)} · deepfolder</title>\n"
        '<link rel="stylesheet" href="/static/serve.css">\n'
        '<script src="/static/serve.js" defer></script>\n'
        "</head>\n<body>\n"
        f"<nav><b>deepfolder</b> {' '.join(nav)}"
        + (f' <span class="where">{escape(run.path.name)}</span>' if run else "")
        + f"</nav>\n<main>\n{body}\n</main>\n</body>\n</html>\n"
    )


def _problem(text: str) -> str:
    return f'<p class="problem">{escape(text)}</p>'


# --- Runs -------------------------------------------------------------------------------


def runs_page(cards: list[RunCard], batches: list[BatchDir]) -> str:
    rows = []
    for c in cards:
        verdict = "" if c.passed is None else ("passed" if c.passed else f"failed ({c.failures})")
        vclass = "" if c.passed is None else ("ok" if c.passed else "bad")
        problems = "".join(_problem(p) for p in c.problems)
        resume = (
            f' <button class="resume" data-run="{c.id}">Resume</button>'
            if c.status == "stopped"
            else ""
        )
        cost = "" if c.cost is None else f"${c.cost:.4f}"
        rows.append(
            f'<tr class="run-card" data-run="{c.id}">'
            f'<td><a href="/runs/{c.id}">{escape(c.name)}</a>{resume}{problems}</td>'
            f"<td>{escape(_short(c.request, 160))}</td><td>{escape(c.started)}</td>"
            f"<td>{escape(c.status)}</td><td>{escape(c.model)}</td>"
            f'<td class="{vclass}">{escape(verdict)}</td><td>{escape(c.length)}</td>'
            f"<td>{escape(c.citations)}</td><td>{escape(cost)}</td></tr>"
        )
    table = (
        '<table class="runs"><thead><tr><th>run</th><th>request</th><th>started</th>'
        "<th>status</th><th>model</th><th>validation</th><th>length</th><th>citations</th>"
        "<th>cost</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
        if rows
        else "<p>No runs found. Give run directories on the command line, or start one.</p>"
    )
    parts = [f"<h1>Runs</h1>\n{table}"]
    for batch in batches:
        parts.append(batch_table(batch))
    return layout("Runs", "\n".join(parts))


def batch_table(batch: BatchDir) -> str:
    rows, totals, problems = batch.summary()
    head = "".join(f"<th>{escape(c)}</th>" for c in BATCH_TABLE_COLUMNS)
    body = []
    for row in [*rows, *([{"task": "total", **totals}] if totals else [])]:
        cells = "".join(f"<td>{escape(_cell(row.get(c)))}</td>" for c in BATCH_TABLE_COLUMNS)
        body.append(f"<tr>{cells}</tr>")
    return (
        f"<h2>Batch {escape(batch.path.name)}</h2>{''.join(_problem(p) for p in problems)}"
        f'<table class="batch"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}'
        "</tbody></table>"
    )


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {v}" for k, v in value.items())
    return str(value)


def _short(text: str, n: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


# --- Report -----------------------------------------------------------------------------


def report_page(run: RunDir, report_html: str, support: list[dict[str, Any]]) -> str:
    match = BODY_RE.search(report_html)
    body = match.group(1) if match else report_html
    body = annotate_citations(body, support)
    # each reference line's id opens its evidence too
    body = REFERENCE_ID_RE.sub(r'<li><a href="#\1" class="ref-id">[\1]</a>', body)
    page = (
        f'<div class="report-layout" data-run="{run.id}">'
        f'<article class="report">{body}</article>'
        '<aside id="pane" hidden><button id="pane-close" title="close">×</button>'
        '<div id="pane-body"></div></aside></div>'
    )
    return layout(run.path.name, page, run=run, tab="Report")


def annotate_citations(body: str, support: list[dict[str, Any]]) -> str:
    """Give every citation link the class and hover text of its sentence's verdict.

    A link belongs to the checked sentence that cites its id and whose end lies closest
    before the link (whitespace ignored); a link no sentence claims is ``unchecked``."""
    by_id: dict[str, list[dict[str, Any]]] = {}
    for entry in support:
        for eid in entry.get("evidence_ids") or []:
            by_id.setdefault(eid, []).append(entry)

    def replace(m: re.Match[str]) -> str:
        eid = m.group(1)
        before = _compact(
            unescape(TAG_RE.sub("", body[max(0, m.start() - PRECEDING_HTML) : m.start()]))
        )
        best, best_at = None, -1
        for entry in by_id.get(eid, []):
            tail = _compact(str(entry.get("sentence", "")))[-SENTENCE_TAIL:]
            at = before.rfind(tail) if tail else -1
            if at > best_at:
                best, best_at = entry, at
        if best is None and by_id.get(eid):  # the text moved: the weakest verdict of the id
            best = min(by_id[eid], key=lambda e: VERDICT_RANK.get(str(e.get("verdict")), 3))
        verdict = str(best.get("verdict")) if best else "unchecked"
        reason = str(best.get("reason") or "") if best else "no support verdict for this citation"
        title = escape(f"{verdict}: {reason}", quote=True)
        return (
            f'<a href="#{eid}" class="cite v-{escape(verdict)}" data-eid="{eid}" title="{title}">'
        )

    return CITE_LINK_RE.sub(replace, body)


def _compact(text: str) -> str:
    return "".join(text.split())


# --- Checks -----------------------------------------------------------------------------


def checks_page(run: RunDir) -> str:
    parts = ["<h1>Checks</h1>"]
    try:
        validation = run.json("validation.json")
        verdict = "passed" if validation.get("passed") else "failed"
        parts.append(
            f'<p class="{"ok" if validation.get("passed") else "bad"}">Validation {verdict}'
            f" (round {escape(str(validation.get('round', '')))})</p>"
        )
        rows = []
        for c in validation.get("checks") or []:
            ok = c.get("passed")
            details = "<br>".join(escape(str(d)) for d in c.get("details") or [])
            rows.append(
                f'<tr class="{"ok" if ok else "bad"}"><td>{escape(str(c.get("name")))}</td>'
                f"<td>{'passed' if ok else 'FAILED'}</td><td>{escape(str(c.get('severity', '')))}</td>"
                f"<td>{escape(str(c.get('measured', '')))}</td>"
                f"<td>{escape(str(c.get('expected', '')))}</td><td>{details}</td></tr>"
            )
        parts.append(
            '<table class="checks"><thead><tr><th>check</th><th>verdict</th><th>severity</th>'
            "<th>measured</th><th>expected</th><th>details</th></tr></thead><tbody>"
            + "".join(rows)
            + "</tbody></table>"
        )
        for name in ("failures", "warnings", "notes"):
            items = validation.get(name) or []
            if items:
                lis = "".join(f"<li>{escape(_cell(i))}</li>" for i in items)
                parts.append(f"<h2>{name.capitalize()}</h2><ul>{lis}</ul>")
        support = validation.get("support") or []
        if support:
            srows = "".join(
                f'<tr class="v-{escape(str(s.get("verdict")))}"><td>{escape(str(s.get("verdict")))}</td>'
                f"<td>{escape(str(s.get('sentence', '')))}</td>"
                f"<td>{escape(', '.join(s.get('evidence_ids') or []))}</td>"
                f"<td>{escape(str(s.get('reason', '')))}</td></tr>"
                for s in support
            )
            parts.append(
                '<h2>Support of cited sentences</h2><table class="support"><thead><tr>'
                "<th>verdict</th><th>sentence</th><th>evidence</th><th>reason</th></tr></thead>"
                f"<tbody>{srows}</tbody></table>"
            )
    except (RunFileError, AttributeError, TypeError) as exc:
        parts.append(_problem(f"validation.json: {exc}"))
    try:
        parts.append("<h2>Original vs final</h2>" + diff_html(run.text("comparison.txt")))
    except RunFileError as exc:
        parts.append(_problem(str(exc)))
    return layout(f"{run.path.name} checks", "\n".join(parts), run=run, tab="Checks")


def diff_html(text: str) -> str:
    lines = []
    for line in text.splitlines():
        cls = ""
        if line.startswith("+") and not line.startswith("+++"):
            cls = "add"
        elif line.startswith("-") and not line.startswith("---"):
            cls = "del"
        elif line.startswith("@@"):
            cls = "hunk"
        lines.append(f'<span class="{cls}">{escape(line)}</span>' if cls else escape(line))
    return '<pre class="diff">' + "\n".join(lines) + "</pre>"


# --- Trace ------------------------------------------------------------------------------


def trace_page(run: RunDir, steps: list[dict[str, Any]], usage: dict[str, Any] | None) -> str:
    parts = ["<h1>Trace</h1>"]
    if usage:
        total = usage.get("total") or {}
        models = "".join(
            f"<tr><td>{escape(name)}</td><td>{m.get('calls', '')}</td>"
            f"<td>{m.get('input_tokens', '')}</td><td>{m.get('output_tokens', '')}</td>"
            f"<td>{escape(_cell(m.get('cost')))}</td><td>{m.get('retries', '')}</td></tr>"
            for name, m in (usage.get("models") or {}).items()
        )
        parts.append(
            '<table class="usage"><thead><tr><th>model</th><th>calls</th><th>input tokens</th>'
            "<th>output tokens</th><th>cost</th><th>retries</th></tr></thead><tbody>"
            f"{models}<tr><td><b>total</b></td><td></td><td>{total.get('input_tokens', '')}</td>"
            f"<td>{total.get('output_tokens', '')}</td><td>{escape(_cell(total.get('cost')))}</td>"
            f"<td>{total.get('retries', '')}</td></tr></tbody></table>"
            f"<p>wall time {escape(_cell(usage.get('wall_seconds')))} s</p>"
        )
    items = [step_html(n, s) for n, s in enumerate(steps, 1)]
    parts.append(f'<ol class="trace">{"".join(items)}</ol>')
    return layout(f"{run.path.name} trace", "\n".join(parts), run=run, tab="Trace")


def step_html(n: int, step: dict[str, Any]) -> str:
    kind = str(step.get("kind", "?"))
    turn = step.get("turn", "")
    took = f"{float(step.get('duration') or 0):.2f}s"
    if kind == "model_call":
        usage = step.get("usage") or {}
        summary = (
            f"model call · {step.get('purpose', '')} · {step.get('model', '')} · "
            f"{usage.get('input_tokens', 0)} in / {usage.get('output_tokens', 0)} out · {took}"
        )
        detail = (
            "<h4>messages</h4>"
            + "".join(
                f'<div class="msg"><b>{escape(str(m.get("role")))}</b>'
                f"<pre>{escape(_content(m))}</pre></div>"
                for m in step.get("messages") or []
            )
            + f"<h4>response</h4><pre>{escape(str(step.get('response_text') or ''))}</pre>"
            + (
                f"<pre>{escape(json.dumps(step.get('tool_calls'), ensure_ascii=False, indent=1))}</pre>"
                if step.get("tool_calls")
                else ""
            )
        )
    elif kind == "tool_call":
        summary = f"tool call · {step.get('name')}"
        detail = (
            f"<pre>{escape(json.dumps(step.get('arguments'), ensure_ascii=False, indent=1))}</pre>"
        )
    elif kind == "tool_result":
        error = " · error" if step.get("is_error") else ""
        summary = f"tool result · {step.get('name')} · {len(step.get('evidence_ids') or [])} evidence{error} · {took}"
        detail = f"<pre>{escape(str(step.get('content', '')))}</pre>"
    elif kind == "note":
        summary = (
            f"note ({step.get('level', 'info')}) · {_short(str(step.get('message', '')), 140)}"
        )
        detail = f"<pre>{escape(str(step.get('message', '')))}</pre>"
    else:
        summary = kind
        rest = {k: v for k, v in step.items() if k not in ("kind", "turn", "at")}
        detail = f"<pre>{escape(json.dumps(rest, ensure_ascii=False, indent=1, default=str))}</pre>"
    return (
        f'<li class="step {escape(kind)}"><details><summary>#{n} turn {escape(str(turn))} · '
        f"{escape(summary)}</summary>{detail}</details></li>"
    )


def _content(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    return json.dumps(content, ensure_ascii=False, indent=1, default=str)


# --- New run ----------------------------------------------------------------------------


def new_run_page(folders: list[str], model: str) -> str:
    if folders:
        options = "".join(
            f'<option value="{n}">{escape(f)}</option>' for n, f in enumerate(folders)
        )
        form = (
            '<form id="new-run">'
            f'<label>Folder <select name="folder">{options}</select></label>'
            '<label>Request <textarea name="request" rows="5" required></textarea></label>'
            f'<label>Model <input name="model" value="{escape(model, quote=True)}" '
            'placeholder="embedded, or provider:model"></label>'
            '<label>Base URL <input name="base_url" placeholder="OpenAI-compatible endpoint (optional)"></label>'
            '<button type="submit">Start</button></form>'
        )
    else:
        form = _problem(
            "No input folders are allowed: start the server with --folder DIR (repeatable)."
        )
    live = (
        '<section id="job" hidden><h2>Progress <span id="job-state"></span></h2>'
        '<button id="job-cancel">Cancel</button> <button id="job-resume" hidden>Resume</button> '
        '<a id="job-report" hidden>Open the report</a>'
        '<ol id="job-steps"></ol><pre id="job-end"></pre></section>'
    )
    return layout("New run", f"<h1>New run</h1>{form}{live}")


def message_page(title: str, message: str) -> str:
    return layout(title, f"<h1>{escape(title)}</h1>{_problem(message)}")
