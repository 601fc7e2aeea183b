// Study page: the sortable, paginated trials table and the pinned-trial details panel.
import { escapeHtml, fmt, fmtDate, fmtDuration, metricShort } from "./common.js";

/** Columns of the trials table: fixed ones around one column per metric key. */
export function tableColumns(catalog) {
  const cols = [
    { id: "number", label: "#", num: true, get: (t) => t.number },
    { id: "state", label: "state", get: (t) => t.state },
    { id: "on_front", label: "front", get: (t) => (t.on_front ? 1 : 0),
      show: (t) => (t.on_front ? "★" : "") },
  ];
  for (const [key, m] of catalog) {
    cols.push({ id: "v:" + key, label: metricShort(m), num: true,
      get: (t) => t.values?.[key] ?? null, show: (t) => fmt(t.values?.[key]) });
  }
  cols.push(
    { id: "stage", label: "stage", num: true, get: (t) => t.stage },
    { id: "duration_s", label: "duration", num: true, get: (t) => t.duration_s,
      show: (t) => fmtDuration(t.duration_s) },
    { id: "worker", label: "worker", get: (t) => t.worker ?? "" },
    { id: "arch", label: "arch", get: (t) => JSON.stringify(t.arch),
      show: (t) => Object.entries(t.arch || {}).map(([k, v]) => `${k}=${v}`).join(" ") },
  );
  return cols;
}

function compare(a, b) {
  if (a === b) return 0;
  if (a === null || a === undefined) return 1; // missing values sort last either way
  if (b === null || b === undefined) return -1;
  return a < b ? -1 : 1;
}

/** Renders one page of ``trials`` into ``table``; returns {total, pages}. */
export function renderTable(table, trials, cols, view) {
  const col = cols.find((c) => c.id === view.sort) || cols[0];
  const sign = view.desc ? -1 : 1;
  let rows = trials;
  if (view.filter === "front") rows = rows.filter((t) => t.on_front);
  else if (view.filter === "complete" || view.filter === "failed") {
    rows = rows.filter((t) => t.state === view.filter);
  }
  rows = rows.slice().sort((a, b) => {
    const av = col.get(a), bv = col.get(b);
    if (av === null || av === undefined || bv === null || bv === undefined) return compare(av, bv);
    return sign * compare(av, bv) || a.number - b.number;
  });
  const pages = Math.max(1, Math.ceil(rows.length / view.pageSize));
  view.page = Math.min(view.page, pages - 1);
  const shown = rows.slice(view.page * view.pageSize, (view.page + 1) * view.pageSize);
  table.tHead.innerHTML = "<tr>" + cols.map((c) => {
    const sorted = c.id === col.id ? (view.desc ? "descending" : "ascending") : "none";
    const mark = sorted === "none" ? "" : sorted === "ascending" ? " ▲" : " ▼";
    return `<th scope="col" class="${c.num ? "num" : ""}" aria-sort="${sorted}">` +
      `<button data-sort="${escapeHtml(c.id)}">${escapeHtml(c.label)}${mark}</button></th>`;
  }).join("") + "</tr>";
  table.tBodies[0].innerHTML = shown.map((t) => {
    const cls = [t.on_front ? "front" : "", t.number === view.pinned ? "pinned" : ""].join(" ");
    return `<tr tabindex="0" data-number="${t.number}" class="${cls}" ` +
      `aria-label="trial ${t.number}, press Enter to pin">` + cols.map((c) => {
      const v = c.show ? c.show(t) : c.get(t);
      return `<td class="${c.num ? "num" : ""}">${escapeHtml(v ?? "")}</td>`;
    }).join("") + "</tr>";
  }).join("");
  return { total: rows.length, pages };
}

function dl(pairs) {
  return "<dl>" + pairs.map(([k, v]) => `<dt>${escapeHtml(k)}</dt><dd>${v}</dd>`).join("") +
    "</dl>";
}

function kvTable(head, rows) {
  return `<div class="scroll"><table class="data"><thead><tr>${head.map((h) => `<th>${escapeHtml(h)}</th>`).join("")}` +
    `</tr></thead><tbody>${rows.map((r) => `<tr>${r.map((c, i) =>
      `<td class="${i > 0 && typeof c === "number" ? "num" : ""}">${escapeHtml(
        typeof c === "number" ? fmt(c) : c ?? "—")}</td>`).join("")}</tr>`).join("")}` +
    "</tbody></table></div>";
}

/**
 * Prediction of a value when the trial's info carries one (the accuracy screen writes
 * ``info.screening.predicted[key] = {mean, std}``): a number or {mean, std}.
 */
function predicted(info, key) {
  const p = info?.screening?.predicted?.[key] ?? info?.predicted?.[key];
  if (p === undefined || p === null) return null;
  return typeof p === "number" ? { mean: p, std: null } : { mean: p.mean, std: p.std ?? null };
}

/** HTML of the details panel of one trial: arch, metrics (source, measured vs predicted), devices. */
export function detailsHtml(t, catalog) {
  const info = t.info || {};
  const parts = [dl([
    ["trial", `#${t.number}`],
    ["state", escapeHtml(t.state) + (t.on_front ? " · <b>on the Pareto front</b>" : "")],
    ["stage", escapeHtml(t.stage)],
    ["worker", escapeHtml(t.worker ?? "—")],
    ["duration", fmtDuration(t.duration_s)],
    ["finished", escapeHtml(fmtDate(t.finished_at))],
    ...(info.duplicate_of !== undefined ? [["duplicate of", `#${escapeHtml(info.duplicate_of)}`]]
      : []),
    ...(info.accuracy ? [["accuracy", escapeHtml(info.accuracy)]] : []),
    ...(info.screening?.reason ? [["screening", escapeHtml(info.screening.reason)]] : []),
  ])];
  if (t.error) parts.push(`<p class="error">${escapeHtml(t.error)}</p>`);
  parts.push("<h3>Architecture</h3>", kvTable(["dimension", "value"],
    Object.entries(t.arch || {}).map(([k, v]) => [k, Array.isArray(v) ? v.join(", ") : String(v)])));
  const keys = [...catalog.keys()].filter((k) => k in (t.values || {}));
  const anyPred = keys.some((k) => predicted(info, k));
  const head = ["metric", "value", "source", ...(anyPred ? ["predicted", "pred. − value"] : [])];
  parts.push("<h3>Metrics</h3>", kvTable(head, keys.map((k) => {
    const v = t.values[k];
    const unit = catalog.get(k)?.unit;
    const row = [k, unit ? `${fmt(v)} ${unit}` : v, info.sources?.[k] ?? "—"];
    if (anyPred) {
      const p = predicted(info, k);
      row.push(p ? `${fmt(p.mean)}${p.std !== null ? " ± " + fmt(p.std) : ""}` : "—",
        p && Number.isFinite(v) ? p.mean - v : "—");
    }
    return row;
  })));
  for (const [device, m] of Object.entries(info.devices || {})) {
    const samples = m.samples_ms || [];
    const sorted = samples.slice().sort((a, b) => a - b);
    const median = sorted.length ? sorted[Math.floor(sorted.length / 2)] : null;
    parts.push(`<h3>Device ${escapeHtml(device)}</h3>`, dl([
      ["profiler", escapeHtml(`${m.profiler ?? "?"} ${m.profiler_version ?? ""}`)],
      ["samples", samples.length ? `${samples.length} (median ${fmt(median)} ms)` : "—"],
    ]), kvTable(["metric", "value"], Object.entries(m.metrics || {})));
    if (m.details && Object.keys(m.details).length) {
      parts.push(`<details><summary>profiler details</summary><pre>${
        escapeHtml(JSON.stringify(m.details, null, 2))}</pre></details>`);
    }
  }
  if (info.costs && Object.keys(info.costs).length) {
    parts.push("<h3>Costs</h3>", kvTable(["cost", "value"], Object.entries(info.costs)));
  }
  parts.push(`<details><summary>raw trial JSON</summary><pre>${escapeHtml(JSON.stringify(
    { ...t, _hover: undefined, _hoverFront: undefined }, null, 2))}</pre></details>`);
  return parts.join("");
}

/** Rows of the predictor-quality table from ``study.extra.predictor_quality``. */
export function qualityHtml(quality) {
  const rows = [];
  for (const [source, perObjective] of Object.entries(quality || {})) {
    for (const [name, q] of Object.entries(perObjective || {})) {
      rows.push([source.replace(/_/g, " "), name, q?.kendall_tau ?? null, q?.rmse ?? null,
        q?.n_heldout ?? null]);
    }
  }
  if (!rows.length) return "";
  return kvTable(["predictor", "objective", "Kendall τ", "RMSE", "held-out trials"], rows);
}
