// Shared helpers of the viewer pages: API access, labels, formatting, front ordering.
// Plain ES module, no build step; Plotly is the global loaded from /static/vendor/plotly.min.js.

export const API = "/api/v1";

/** Fetch JSON from the API; throws an Error carrying the server's message (FastAPI `detail`). */
export async function getJSON(path, { signal } = {}) {
  return readJSON(fetch(API + path, { headers: { Accept: "application/json" }, signal }));
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

/** Readable axis label: "latency ms on cpu [ms] ↓ better". */
export function metricLabel(m, { arrow = true } = {}) {
  if (!m) return "";
  let s = m.metric.replace(/_/g, " ");
  if (m.device) s += ` on ${m.device}`;
  if (m.unit) s += ` [${m.unit}]`;
  if (arrow && m.direction) s += m.direction === "maximize" ? " ↑ better" : " ↓ better";
  return s;
}

export function metricShort(m) {
  return m.unit ? `${m.key} [${m.unit}]` : m.key;
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
    .filter((t) => Number.isFinite(t.values?.[xKey]) && Number.isFinite(t.values?.[yKey]))
    .sort((a, b) => a.values[xKey] - b.values[xKey] || a.values[yKey] - b.values[yKey]);
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
