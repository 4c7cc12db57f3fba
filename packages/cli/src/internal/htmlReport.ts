/**
 * The HTML run report (`--report FILE.html`): one self-contained page around the same JSON the `.json` report holds.
 * The summary and the chart of outcomes by reason are HTML written here (escaped); the table of every row is drawn by
 * the page's own script from the JSON, a page of rows at a time, so 100,000 rows stay usable.
 *
 * Nothing reaches the network and nothing from the input runs: the JSON sits in a `<script type="application/json">`
 * with every `<` written as `\u003c` (so no `</script>` in an id or a vendor message can end it), the script puts data
 * into the page only as text (`textContent`), and the page's Content-Security-Policy allows no fetch of any kind and
 * runs only the one script whose hash it names, so even markup that got in could not execute or call out.
 */
import { Outcome } from "@dirsync/core"
import { createHash } from "node:crypto"
import * as Redaction from "./redaction.ts"
import * as Terminal from "./terminal.ts"
import { count } from "./text.ts"

/** Whether a report path asks for the HTML page. */
export const isHtml = (path: string): boolean => path !== "-" && /\.html?$/i.test(path)

/** Text safe between HTML tags and inside a double-quoted attribute. */
export const escapeHtml = (text: string): string =>
  text.replace(
    /[&<>"']/g,
    (c) => c === "&" ? "&amp;" : c === "<" ? "&lt;" : c === ">" ? "&gt;" : c === "\"" ? "&quot;" : "&#39;"
  )

/**
 * JSON text safe inside `<script type="application/json">`: `<` only ever occurs inside JSON strings, where `\u003c`
 * reads back as the same character, so no `</script>` or `<!--` can appear and the document parses to the same value.
 */
export const scriptSafe = (json: string): string => json.replaceAll("<", "\\u003c")

/** Rows by outcome and reason, for the chart: counted as the items are written, so no second pass over them. */
export interface Chart {
  readonly add: (outcome: Outcome.RowOutcome) => void
  readonly bars: () => ReadonlyArray<
    { readonly status: Outcome.Status; readonly reason: string; readonly rows: number }
  >
}

export const makeChart = (): Chart => {
  const counts = new Map<string, { status: Outcome.Status; reason: string; rows: number }>()
  return {
    add: (outcome) => {
      const reason = outcome.reason ?? ""
      const key = `${outcome.status}\u0000${reason}`
      const bar = counts.get(key)
      if (bar === undefined) counts.set(key, { status: outcome.status, reason, rows: Outcome.rowCount(outcome) })
      else bar.rows += Outcome.rowCount(outcome)
    },
    bars: () => [...counts.values()].toSorted((a, b) => b.rows - a.rows || a.reason.localeCompare(b.reason))
  }
}

const STYLE = `
:root{--applied:#2e7d32;--rejected:#c62828;--failed:#ef6c00;--skipped:#6d6d6d;font-family:system-ui,sans-serif;color:#1b1b1b}
body{margin:0 auto;max-width:1200px;padding:16px 24px}
h1{font-size:1.3rem;margin:.2rem 0}
.meta{color:#555;margin:0 0 12px}
.totals{display:flex;gap:12px;flex-wrap:wrap;margin:12px 0}
.total{border:1px solid #ddd;border-radius:6px;padding:6px 12px;min-width:90px}
.total b{display:block;font-size:1.4rem}
.total.applied b{color:var(--applied)}.total.rejected b{color:var(--rejected)}
.total.failed b{color:var(--failed)}.total.skipped b{color:var(--skipped)}
h2{font-size:1.05rem;margin:18px 0 6px}
.chart{display:grid;grid-template-columns:minmax(120px,max-content) 1fr max-content;gap:4px 10px;align-items:center}
.chart .label{white-space:nowrap}
.chart .track{display:block;background:#f0f0f0;border-radius:3px;height:14px}
.chart .bar{display:block;height:14px;border-radius:3px;min-width:2px}
.bar.applied{background:var(--applied)}.bar.rejected{background:var(--rejected)}
.bar.failed{background:var(--failed)}.bar.skipped{background:var(--skipped)}
.chart .n{text-align:right;font-variant-numeric:tabular-nums}
.controls{display:flex;gap:10px;align-items:center;flex-wrap:wrap;margin:8px 0}
.controls input{width:22rem;max-width:100%}
table{border-collapse:collapse;width:100%;font-size:.9rem}
th,td{border-bottom:1px solid #e5e5e5;padding:4px 6px;text-align:left;vertical-align:top}
th{background:#fafafa;cursor:pointer;user-select:none;position:sticky;top:0}
th[aria-sort=ascending]::after{content:" \\25B2"}th[aria-sort=descending]::after{content:" \\25BC"}
td.num{text-align:right;font-variant-numeric:tabular-nums}
td.msg{max-width:38rem;overflow-wrap:anywhere}
td.id{overflow-wrap:anywhere;max-width:16rem}
.status{font-weight:600}.status.applied{color:var(--applied)}.status.rejected{color:var(--rejected)}
.status.failed{color:var(--failed)}.status.skipped{color:var(--skipped)}
.pager{display:flex;gap:8px;align-items:center;margin:8px 0}
`

/**
 * The page's script. Plain ES2020, no template literals (it lives in one here), data only through `textContent`.
 * Filters and sorting work on an array of indices, and only one page of rows is in the DOM.
 */
const SCRIPT = `"use strict";
(function () {
  var data = JSON.parse(document.getElementById("report-data").textContent);
  var items = data.items;
  var PAGE = 100;
  var status = document.getElementById("filter-status");
  var text = document.getElementById("filter-text");
  var body = document.getElementById("rows");
  var shown = document.getElementById("shown");
  var pageInfo = document.getElementById("page");
  var prev = document.getElementById("prev");
  var next = document.getElementById("next");
  var heads = document.querySelectorAll("th[data-key]");
  var view = [];
  var page = 0;
  var sortKey = "row";
  var sortDir = 1;
  var haystack = null;
  var fmt = function (n) { return n.toLocaleString("en-US"); };
  // As the console prints them (internal/terminal.ts): controls, bidi overrides, zero-width characters, separators,
  // private-use, unassigned code points and lone surrogates shown as escapes, so no id can look like another one.
  var UNSAFE = /[\\p{Cc}\\p{Cf}\\p{Zl}\\p{Zp}\\p{Co}\\p{Cn}\\p{Cs}]/gu;
  var escapeOne = function (c) {
    if (c === "\\n") return "\\\\n";
    if (c === "\\r") return "\\\\r";
    if (c === "\\t") return "\\\\t";
    var code = c.codePointAt(0);
    return code <= 0xffff ? "\\\\u" + ("000" + code.toString(16)).slice(-4) : "\\\\u{" + code.toString(16) + "}";
  };
  var safe = function (t) { return t.replace(UNSAFE, escapeOne); };
  // The table is in row order as written unless an item says otherwise (then the first sort puts it in order).
  var inOrder = true;
  for (var o = 1; o < items.length; o++) if (items[o].row < items[o - 1].row) { inOrder = false; break; }
  var rowText = function (it) { return it.rows && it.rows.length > 1 ? it.rows.join(", ") : String(it.row); };
  var search = function (i) {
    if (haystack === null) {
      haystack = new Array(items.length);
      for (var k = 0; k < items.length; k++) {
        var it = items[k];
        haystack[k] = (rowText(it) + "\\u0000" + safe(it.id) + "\\u0000" + it.status + "\\u0000" + (it.code === undefined ? "" : it.code) +
          "\\u0000" + (it.reason || "") + "\\u0000" + safe(it.message || "")).toLowerCase();
      }
    }
    return haystack[i];
  };
  var value = function (it, key) { return key === "row" ? it.row : it[key]; };
  var compare = function (a, b) {
    var x = value(items[a], sortKey), y = value(items[b], sortKey);
    if (x === undefined || x === "") return y === undefined || y === "" ? a - b : 1;
    if (y === undefined || y === "") return -1;
    if (x < y) return -sortDir;
    if (x > y) return sortDir;
    return a - b;
  };
  var apply = function () {
    var s = status.value;
    var q = text.value.trim().toLowerCase();
    var out = [];
    for (var i = 0; i < items.length; i++) {
      if (s !== "" && items[i].status !== s) continue;
      if (q !== "" && search(i).indexOf(q) === -1) continue;
      out.push(i);
    }
    if (!(inOrder && sortKey === "row" && sortDir === 1)) out.sort(compare);
    view = out;
    page = 0;
    draw();
  };
  var cell = function (tr, textValue, cls) {
    var td = document.createElement("td");
    td.textContent = textValue;
    if (cls) td.className = cls;
    tr.appendChild(td);
  };
  var draw = function () {
    var pages = Math.max(1, Math.ceil(view.length / PAGE));
    if (page >= pages) page = pages - 1;
    var from = page * PAGE;
    var to = Math.min(view.length, from + PAGE);
    var frag = document.createDocumentFragment();
    for (var i = from; i < to; i++) {
      var it = items[view[i]];
      var tr = document.createElement("tr");
      cell(tr, rowText(it), "num");
      cell(tr, safe(it.id), "id");
      cell(tr, it.status, "status " + it.status);
      cell(tr, it.code === undefined ? "" : String(it.code), "num");
      cell(tr, it.reason || "", "");
      cell(tr, safe(it.message || ""), "msg");
      frag.appendChild(tr);
    }
    body.replaceChildren(frag);
    shown.textContent = view.length === 0 ? "No row matches." :
      "Rows " + fmt(from + 1) + "\\u2013" + fmt(to) + " of " + fmt(view.length) +
      (view.length === items.length ? "" : " (filtered from " + fmt(items.length) + ")");
    pageInfo.textContent = "page " + fmt(page + 1) + " of " + fmt(pages);
    prev.disabled = page === 0;
    next.disabled = page >= pages - 1;
    for (var h = 0; h < heads.length; h++) {
      var key = heads[h].getAttribute("data-key");
      if (key === sortKey) heads[h].setAttribute("aria-sort", sortDir === 1 ? "ascending" : "descending");
      else heads[h].removeAttribute("aria-sort");
    }
  };
  var timer = 0;
  status.addEventListener("change", apply);
  text.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(apply, 120); });
  prev.addEventListener("click", function () { page--; draw(); });
  next.addEventListener("click", function () { page++; draw(); });
  for (var h = 0; h < heads.length; h++) {
    heads[h].addEventListener("click", function (event) {
      var key = event.currentTarget.getAttribute("data-key");
      sortDir = key === sortKey ? -sortDir : 1;
      sortKey = key;
      apply();
    });
  }
  apply();
  document.body.setAttribute("data-ready", String(Math.round(performance.now())));
})();
`

const scriptHash = createHash("sha256").update(SCRIPT).digest("base64")

/**
 * No fetch of any kind (images, fonts, frames, connections, form posts), inline style only, and the one script whose
 * hash is named here: markup smuggled into the page could neither run nor call out.
 */
const POLICY = `default-src 'none'; style-src 'unsafe-inline'; script-src 'sha256-${scriptHash}'; ` +
  "base-uri 'none'; form-action 'none'"

const STATUSES: ReadonlyArray<Outcome.Status> = ["applied", "rejected", "failed", "skipped"]

/** What the page says about the run. */
export interface Header {
  readonly command: string
  /** Already sanitized (`Report.sanitizeTarget`). */
  readonly target: string
  readonly dryRun: boolean
  readonly summary: Outcome.Summary
  readonly bars: ReturnType<Chart["bars"]>
}

/**
 * The page up to the opening of the JSON data block: the JSON report text (made {@link scriptSafe}) follows, then
 * {@link after}. Every text is redacted, then escaped.
 */
export const before = (header: Header, secrets: ReadonlyArray<string>): string => {
  const t = (text: string) => escapeHtml(Terminal.safe(Redaction.redact(text, secrets)))
  const s = header.summary
  const top = Math.max(1, ...header.bars.map((b) => b.rows))
  const chart = header.bars.map((b) => {
    const label = b.reason === "" ? b.status : `${b.status} · ${b.reason}`
    const width = ((b.rows / top) * 100).toFixed(2)
    return `<span class="label">${t(label)}</span><span class="track"><span class="bar ${b.status}" ` +
      `style="width:${width}%"></span></span><span class="n">${count(b.rows)}</span>`
  }).join("\n")
  const title = `${header.command}${header.dryRun ? " (dry run, nothing sent)" : ""}`
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${POLICY}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>dirsync: ${t(title)}</title>
<style>${STYLE}</style>
</head>
<body>
<h1 id="title">${t(title)}</h1>
<p class="meta">target <b id="target">${t(header.target)}</b>${
    header.dryRun ? " · dry run: nothing was sent" : ""
  } · written by dirsync</p>
<div class="totals" id="totals">
<div class="total"><b>${count(s.total)}</b>rows</div>
${STATUSES.map((k) => `<div class="total ${k}"><b>${count(s[k])}</b>${k}</div>`).join("\n")}
</div>
<h2>Outcomes by reason</h2>
<div class="chart" id="chart" role="img" aria-label="rows by outcome and reason">
${chart}
</div>
<h2>Rows</h2>
<div class="controls">
<label>Status <select id="filter-status">
<option value="">all (${count(s.total)})</option>
${STATUSES.map((k) => `<option value="${k}">${k} (${count(s[k])})</option>`).join("\n")}
</select></label>
<label>Find <input id="filter-text" type="search" placeholder="id, reason, message, row…" autocomplete="off"></label>
</div>
<div class="pager"><button id="prev" type="button">‹ previous</button><span id="page"></span><button id="next" type="button">next ›</button> <span id="shown"></span></div>
<table>
<thead><tr><th data-key="row">row</th><th data-key="id">id</th><th data-key="status">status</th><th data-key="code">code</th><th data-key="reason">reason</th><th data-key="message">message</th></tr></thead>
<tbody id="rows"></tbody>
</table>
<noscript><p>The table needs JavaScript; the same rows are in the JSON block of this file.</p></noscript>
<script type="application/json" id="report-data">`
}

/** The page after the JSON data block. */
export const after = `</script>
<script>${SCRIPT}</script>
</body>
</html>
`
