"""The audit's ``report.html``: one self-contained page a person can act on.

Top to bottom: what was scanned and links to every CSV; a table of issues with how many files
each flags, the rule that flags them and a link to examples; per issue the worst examples as
thumbnails with their scores and the threshold; the duplicate groups with the file each group
keeps marked and the reason; the most unusual images; the files that could not be read and why;
unusual files that were read; then the dataset overview (classes, sizes, plots, samples).

Thumbnails are small base64 JPEGs and their number is capped (`MAX_EXAMPLES`, `MAX_GROUPS`,
...), so the page stays a few MB for any folder size while the CSVs hold every row.
"""

from __future__ import annotations

import html
from pathlib import Path

MAX_EXAMPLES = 6  # worst examples shown per issue
MAX_GROUPS = 20  # duplicate groups shown
MAX_GROUP_FILES = 8  # files shown per group
MAX_LISTED = 100  # skipped files / notes listed

_CSS = """body{font-family:system-ui,sans-serif;margin:1.5em auto;max-width:1200px;padding:0 1em;color:#222}
h1{margin-bottom:.2em}h2{border-bottom:2px solid #ddd;padding-bottom:.2em;margin-top:1.8em}
.lead{font-size:1.05em}.files a{margin-right:1em}.muted{color:#888}.small{font-size:.85em}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}
td.n{text-align:right}tr.zero td{color:#999}
.grid{display:flex;flex-wrap:wrap;gap:10px;margin:.4em 0 1em}
figure{margin:0;width:150px;border:3px solid #eee;border-radius:4px;padding:3px;background:#fafafa}
figure img{display:block;max-width:140px;max-height:120px;margin:auto}
figcaption{font-size:11px;line-height:1.3}.name{word-break:break-all}
figure.keep{border-color:#2a9d3a;background:#effaf0}figure.drop{border-color:#d08a2a}
.badge{display:inline-block;font-weight:bold;font-size:11px;padding:0 4px;border-radius:3px;color:#fff}
.keep .badge{background:#2a9d3a}.drop .badge{background:#d08a2a}
.score{font-weight:bold}"""


def _esc(text) -> str:
    """HTML-escaped text; bytes of file names that are not UTF-8 become ``\\xNN``."""
    return html.escape(str(text).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace"))


def figure(uri, lines, css_class="", badge=None) -> str:
    """A thumbnail with caption lines (the first is the file name)."""
    head = f"<span class='badge'>{_esc(badge)}</span> " if badge else ""
    caption = "<br>".join([f"<span class='name'>{_esc(lines[0])}</span>"]
                          + [_esc(line) for line in lines[1:] if line])
    return (f"<figure class='{css_class}'><img src='{uri}' alt='{_esc(lines[0])}'>"
            f"<figcaption>{head}{caption}</figcaption></figure>")


def header(title, summary, root, files) -> list:
    counts = (f"{summary['num_files']} image files under <code>{_esc(root)}</code>: "
              f"{summary['num_images']} read, {summary['num_unreadable']} could not be read; "
              f"{len(summary['classes'])} classes (sub-folders)")
    links = " ".join(f"<a href='{_esc(name)}'>{_esc(name)}</a> <span class='muted small'>({_esc(what)})</span>"
                     for name, what in files.items())
    return [f"<h1>{_esc(title)}</h1>", f"<p class='lead'>{counts}. Nothing was moved or deleted.</p>",
            f"<p class='files'>Full results: {links}</p>"]


def issue_table(counts: dict, rules: dict, total: int) -> list:
    rows = ["<h2 id='issues'>Issues found</h2>",
            "<p>Each file is checked for every issue; a file can have several. Click an issue for examples.</p>",
            "<table><tr><th>issue</th><th>files</th><th>share</th><th>flagged when</th></tr>"]
    for issue, n in counts.items():
        share = f"{100 * n / total:.1f}%" if total else "-"
        name = f"<a href='#issue-{issue}'>{issue}</a>" if n else issue
        rows.append(f"<tr class='{'zero' if not n else ''}'><td>{name}</td><td class='n'>{n}</td>"
                    f"<td class='n'>{share}</td><td>{_esc(rules.get(issue, ''))}</td></tr>")
    rows.append("</table>")
    return rows


def issue_section(issue, count, rule, examples, root, thumb) -> list:
    """``examples``: ``[(path, score, detail)]`` worst first; files without a thumbnail (unreadable)
    are listed with their detail instead."""
    from keras_cv_apps.image.io import relative_name

    figs, rows = [], []
    for path, score, detail in examples[:MAX_EXAMPLES]:
        uri = thumb(path)
        if uri:
            figs.append(figure(uri, [relative_name(path, root), f"score {score:.2f}", detail]))
        else:
            rows.append(f"<tr><td><code>{_esc(relative_name(path, root))}</code></td><td>{_esc(detail)}</td></tr>")
    shown = len(figs) + len(rows)
    more = f" The other {count - shown} are in flags.csv." if count > shown else ""
    out = [f"<h3 id='issue-{issue}'>{issue}: {count} file{'s' if count != 1 else ''}</h3>",
           f"<p class='small'>Flagged when {_esc(rule)}. Worst first.{more}</p>"]
    if figs:
        out.append("<div class='grid'>" + "".join(figs) + "</div>")
    if rows:
        out.append(f"<table><tr><th>file</th><th>why</th></tr>{''.join(rows)}</table>")
    return out


def duplicate_section(groups, root, thumb, keep_text) -> list:
    from keras_cv_apps.image.io import relative_name

    extra = sum(len(g.files) - 1 for g in groups)
    out = [f"<h2 id='duplicates'>Duplicate groups: {len(groups)} groups, {extra} extra copies</h2>",
           f"<p>Each group keeps one file (green, <b>KEEP</b>), chosen {_esc(keep_text)}; the others "
           "(orange) are copies that <code>python -m apps.dedup</code> would move with <code>--move-to</code> "
           "or delete with <code>--delete --yes</code>. Score: similarity to the kept file (1 = identical "
           "pixels). Every group and reason is in duplicates.csv.</p>"]
    for g in groups[:MAX_GROUPS]:
        figs = []
        order = sorted(range(len(g.files)), key=lambda k: g.files[k] != g.representative)
        for k in order[:MAX_GROUP_FILES]:
            f = g.files[k]
            kept = f == g.representative
            reason = g.reasons[k] if g.reasons else ""
            label = g.labels[k] if g.labels else ""
            lines = [relative_name(f, root), label, f"score {g.scores[k]:.2f}" if not kept else "", reason]
            figs.append(figure(thumb(f) or "", [line for line in lines if line],
                               "keep" if kept else "drop", "KEEP" if kept else "copy"))
        hidden = len(g.files) - len(figs)
        more = f" ({hidden} more in duplicates.csv)" if hidden > 0 else ""
        out.append(f"<h3>Group {g.id}: {len(g.files)} files{more}</h3><div class='grid'>{''.join(figs)}</div>")
    if len(groups) > MAX_GROUPS:
        out.append(f"<p>{len(groups) - MAX_GROUPS} more groups are in duplicates.csv.</p>")
    return out


def file_list(anchor, title, items, root, what) -> list:
    from keras_cv_apps.image.io import relative_name

    if not items:
        return []
    rows = "".join(f"<tr><td><code>{_esc(relative_name(p, root))}</code></td><td>{_esc(r)}</td></tr>"
                   for p, r in items[:MAX_LISTED])
    more = f"<p>{len(items) - MAX_LISTED} more in {what}.</p>" if len(items) > MAX_LISTED else ""
    return [f"<h2 id='{anchor}'>{_esc(title)} ({len(items)})</h2>",
            f"<table><tr><th>file</th><th>reason</th></tr>{rows}</table>{more}"]


def page(title, parts) -> str:
    return ("<!doctype html><html><head><meta charset='utf-8'><title>" + _esc(title)
            + f"</title><style>{_CSS}</style></head><body>" + "\n".join(parts) + "</body></html>")


def relative_path(path, root) -> str:
    """Display text of ``path`` under ``root``."""
    from keras_cv_apps.image.io import relative_name

    return relative_name(Path(path), root)
