// Shared helpers of the viewer pages: API access, labels, formatting, front ordering.
// Plain ES module, no build step; Plotly is the global loaded from /static/vendor/plotly.min.js.

export const API = "/api/v1";

/** Fetch JSON from the API; throws an Error carrying the server's message (FastAPI `detail`). */
export async function getJSON(path, { signal } = {}) {
  return readJSON(fetch(API + path, { headers: { Accept: "application/json" }, signal }));
}

/** Send JSON (POST/PATCH/DELETE); resolves with the answer's JSON, or null for a 204. */
export async function sendJSON(method, path, body) {
  const res = await fetch(API + path, {
    method, headers: { Accept: "application/json", "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (res.status === 204) return null;
  return readJSON(Promise.resolve(res));
}

/** JSON of a pending fetch (e.g. one started early by the page's inline script). */
export async function readJSON(pending) {
  let res;
  try {
    res = await pending;
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new Error(`cannot reach the server (${err.message})`);
  }
  if (!res.ok) {
    let msg = `${res.status} ${res.statusText}`;
    try {
      const body = await res.json();
      if (body && body.detail !== undefined) {
        msg += ": " + (typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail));
      }
    } catch (_) { /* not JSON: keep the status line */ }
    throw new Error(msg);
  }
  return res.json();
}

export const TERMINAL = new Set(["completed", "failed", "cancelled"]);

export function escapeHtml(s) {
  return String(s ?? "").replace(/[&<>"']/g, (c) => (
    { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}

// one formatter for all: toLocaleString builds a new one per call (slow over 10k hover labels)
const INTEGER = new Intl.NumberFormat("en-US");

/** Numbers with 4 significant digits (integers kept whole), em dash for missing. */
export function fmt(v) {
  if (v === null || v === undefined || Number.isNaN(v)) return "—";
  if (typeof v !== "number") return String(v);
  if (Number.isInteger(v) && Math.abs(v) < 1e15) return INTEGER.format(v);
  const a = Math.abs(v);
  if (a !== 0 && (a >= 1e6 || a < 1e-3)) return v.toExponential(3);
  return Number(v.toPrecision(4)).toString();
}

export function fmtDate(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return d.toISOString().replace("T", " ").slice(0, 16) + " UTC";
}

export function statusBadge(status) {
  return `<span class="badge ${escapeHtml(status)}">${escapeHtml(status)}</span>`;
}

export function progressBar(p) {
  const pct = Math.round(Math.max(0, Math.min(1, p || 0)) * 100);
  return `<span class="progress" role="progressbar" aria-valuemin="0" aria-valuemax="100" ` +
    `aria-valuenow="${pct}"><span style="width:${pct}%"></span></span>${pct}%`;
}

/**
 * Metric descriptions of a study: objectives first (with unit and direction from the API), then
 * every other numeric key found in trial values (constraints, extra metrics), unit unknown.
 */
export function metricCatalog(study, trials) {
  const out = new Map();
  for (const o of study.objectives || []) {
    out.set(o.key, { key: o.key, metric: o.metric, device: o.device,
      unit: o.unit || unitFromName(o.metric), direction: o.direction, objective: true });
  }
  for (const t of trials) {
    for (const k of Object.keys(t.values || {})) {
      if (!out.has(k)) {
        const [metric, device] = k.split("@");
        out.set(k, { key: k, metric, device: device || null, unit: unitFromName(metric),
          direction: null, objective: false });
      }
    }
  }
  return out;
}

// The project names metrics with their unit as suffix (latency_ms, params_bytes): use it when
// the server reports no unit.
const SUFFIX_UNITS = [["_ms", "ms"], ["_us", "µs"], ["_s", "s"], ["_bytes", "B"], ["_kb", "kB"],
  ["_mb", "MB"], ["_mj", "mJ"], ["_uj", "µJ"], ["_j", "J"], ["_mw", "mW"], ["_w", "W"],
  ["_pct", "%"]];

export function unitFromName(metric) {
  const m = String(metric).toLowerCase();
  for (const [suffix, unit] of SUFFIX_UNITS) if (m.endsWith(suffix)) return unit;
  return "";
}

/** ``metric`` without the unit suffix its unit repeats ("latency_ms", "ms" -> "latency"). */
function withoutUnitSuffix(metric, unit) {
  if (!unit) return metric;
  const hit = SUFFIX_UNITS.find(([suffix, u]) => u === unit
    && String(metric).toLowerCase().endsWith(suffix));
  return hit ? metric.slice(0, -hit[0].length) : metric;
}

/** Readable axis label: "latency on cpu [ms] ↓ better" (the unit once, not "latency ms [ms]");
 * an architecture dimension: "arch: width". */
export function metricLabel(m, { arrow = true } = {}) {
  if (!m) return "";
  if (m.dim) return `arch: ${m.dim}`;
  let s = withoutUnitSuffix(m.metric, m.unit).replace(/_/g, " ");
  if (m.device) s += ` on ${m.device}`;
  if (m.unit) s += ` [${m.unit}]`;
  if (arrow && m.direction) s += m.direction === "maximize" ? " ↑ better" : " ↓ better";
  return s;
}

/** Short name for menus and legends: the key, with its unit unless the key already says it. */
export function metricShort(m) {
  if (m.dim) return `arch: ${m.dim}`;
  const base = withoutUnitSuffix(m.metric, m.unit);
  return m.unit && base === m.metric ? `${m.key} [${m.unit}]` : m.key;
}

/** Durations people read: "0.2 ms", "35 ms", "1.9 s", "2 min 05 s", "1 h 02 min". */
export function fmtDuration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "—";
  if (seconds < 1) {
    const ms = seconds * 1000;
    return `${ms < 10 ? Number(ms.toPrecision(2)) : Math.round(ms)} ms`;
  }
  if (seconds < 60) return `${Number(seconds.toPrecision(3))} s`;
  if (seconds < 3600) {
    const m = Math.floor(seconds / 60);
    return `${m} min ${String(Math.round(seconds - 60 * m)).padStart(2, "0")} s`;
  }
  const h = Math.floor(seconds / 3600);
  return `${h} h ${String(Math.round((seconds - 3600 * h) / 60)).padStart(2, "0")} min`;
}

/** Prefix of architecture dimensions among plot fields (metrics have no prefix). */
export const ARCH = "arch:";

/** A plot field of a trial: a metric value, or an arch dimension's value ("arch:width"). */
export function fieldValue(t, key) {
  if (key.startsWith(ARCH)) {
    const v = t.arch?.[key.slice(ARCH.length)];
    return Array.isArray(v) ? `[${v.join(",")}]` : v;
  }
  return t.values?.[key];
}

export function hasValue(v) {
  return v !== undefined && v !== null && (typeof v !== "number" || Number.isFinite(v));
}

/** Architecture dimensions seen in the trials, as plot fields: numeric ones and categorical. */
export function archCatalog(trials) {
  const seen = new Map();
  for (const t of trials) {
    for (const [d, v] of Object.entries(t.arch || {})) {
      if (!seen.has(d)) seen.set(d, { numeric: true, values: new Set() });
      const e = seen.get(d);
      const shown = Array.isArray(v) ? `[${v.join(",")}]` : v;
      e.values.add(shown);
      if (typeof shown !== "number") e.numeric = false;
    }
  }
  const out = new Map();
  for (const [d, e] of [...seen.entries()].sort((a, b) => a[0].localeCompare(b[0]))) {
    const values = [...e.values].sort((a, b) => (e.numeric ? a - b : String(a).localeCompare(b)));
    out.set(ARCH + d, { key: ARCH + d, dim: d, metric: d, unit: "", direction: null,
      numeric: e.numeric, values });
  }
  return out;
}

/** Compact one-line rendering of an arch for hover labels, wrapped every few dims. */
export function archText(arch, perLine = 4) {
  const parts = Object.entries(arch || {}).map(([k, v]) =>
    `${k}=${Array.isArray(v) ? "[" + v.join(",") + "]" : v}`);
  const lines = [];
  for (let i = 0; i < parts.length; i += perLine) lines.push(parts.slice(i, i + perLine).join(", "));
  return lines.join("<br>");
}

/** Points of a front ordered along the x axis, so the joining line reads as a trade-off curve. */
export function orderAlong(points, xKey, yKey) {
  return points
    .filter((t) => Number.isFinite(fieldValue(t, xKey)) && Number.isFinite(fieldValue(t, yKey)))
    .sort((a, b) => fieldValue(a, xKey) - fieldValue(b, xKey)
      || fieldValue(a, yKey) - fieldValue(b, yKey));
}

let webglOk = null;
/**
 * Whether this browser can draw WebGL (scattergl). Creating a context to find out costs tens of
 * milliseconds (more with software GL), so the answer is remembered for the session.
 */
export function hasWebGL() {
  if (webglOk === null) {
    const known = sessionStorage.getItem("paretonas.webgl");
    if (known !== null) {
      webglOk = known === "1";
      return webglOk;
    }
    try {
      const c = document.createElement("canvas");
      const gl = c.getContext("webgl") || c.getContext("experimental-webgl");
      webglOk = !!gl;
      gl?.getExtension("WEBGL_lose_context")?.loseContext(); // free it: Plotly makes its own
    } catch (_) {
      webglOk = false;
    }
    sessionStorage.setItem("paretonas.webgl", webglOk ? "1" : "0");
  }
  return webglOk;
}

/** scattergl for large point sets (SVG gets slow past a few thousand points); ?render= forces. */
export function scatterType(n) {
  const forced = new URLSearchParams(location.search).get("render");
  if (forced === "svg") return "scatter";
  if (forced === "gl" && hasWebGL()) return "scattergl";
  return n > 1500 && hasWebGL() ? "scattergl" : "scatter";
}

export function fillSelect(select, options, value) {
  select.innerHTML = options
    .map((o) => `<option value="${escapeHtml(o.value)}">${escapeHtml(o.label)}</option>`)
    .join("");
  if (value !== undefined && options.some((o) => o.value === value)) select.value = value;
}

export const PLOT_CONFIG = { responsive: true, displaylogo: false, scrollZoom: false };

/** Mark the page drawn and interactive (read by tests and bench/viewer.py). */
export function markReady(name = "viewer-ready") {
  if (!document.body.dataset.ready) {
    performance.mark(name);
    document.body.dataset.ready = "1";
  }
}

export function showError(el, err) {
  el.textContent = err ? (err.message || String(err)) : "";
}

/** Resolves with the Plotly global once the async vendor script has run (data loads meanwhile). */
export function plotlyReady() {
  if (window.Plotly) return Promise.resolve(window.Plotly);
  const tag = document.getElementById("plotly-js");
  return new Promise((resolve, reject) => {
    tag.addEventListener("load", () => resolve(window.Plotly));
    tag.addEventListener("error", () => reject(new Error("could not load the plotting library")));
  });
}
