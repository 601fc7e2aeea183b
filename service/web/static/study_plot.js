// Study page charts: the trials scatter (front highlighted) and the hypervolume history.
import {
  PLOT_CONFIG, archText, fmt, metricLabel, metricShort, orderAlong, scatterType,
} from "./common.js";

const ACCENT = "#c2410c";
const FADED = "#8b95a5";

/** Whether a trial satisfies every constraint of the spec (constraint keys: metric[@device]). */
export function feasible(trial, constraints) {
  for (const c of constraints) {
    const key = c.device ? `${c.metric}@${c.device}` : c.metric;
    const v = trial.values?.[key];
    if (!Number.isFinite(v)) return false;
    if (c.max !== null && c.max !== undefined && v > c.max) return false;
    if (c.min !== null && c.min !== undefined && v < c.min) return false;
  }
  return true;
}

/** Hover label of a trial, cached on the trial until its front membership changes. */
function hoverText(t, catalog) {
  if (t._hover && t._hoverFront === t.on_front) return t._hover;
  const lines = [`<b>trial #${t.number}</b>${t.on_front ? " · on the front" : ""}`,
    archText(t.arch)];
  for (const [key, m] of catalog) {
    if (key in (t.values || {})) {
      lines.push(`${key}: ${fmt(t.values[key])}${m.unit ? " " + m.unit : ""}`);
    }
  }
  t._hover = lines.join("<br>");
  t._hoverFront = t.on_front;
  return t._hover;
}

function markerColour(points, cKey, base) {
  if (!cKey) return { color: base };
  return { color: points.map((t) => t.values[cKey] ?? null) };
}

/**
 * Traces for the scatter: dominated, infeasible, front line, front markers, pinned ring.
 * ``view`` = {x, y, c, pinned}; ``catalog`` maps key -> metric description.
 */
export function scatterTraces(trials, view, catalog, constraints) {
  const { x, y, c } = view;
  const plotted = trials.filter((t) => t.state === "complete"
    && Number.isFinite(t.values?.[x]) && Number.isFinite(t.values?.[y]));
  const front = [], dominated = [], infeasible = [];
  for (const t of plotted) {
    if (t.on_front) front.push(t);
    else if (feasible(t, constraints)) dominated.push(t);
    else infeasible.push(t);
  }
  const type = scatterType(plotted.length);
  let cmin, cmax;
  if (c) {
    const cv = plotted.map((t) => t.values[c]).filter(Number.isFinite);
    cmin = Math.min(...cv);
    cmax = Math.max(...cv);
  }
  const scale = c ? { colorscale: "Viridis", cmin, cmax,
    reversescale: catalog.get(c)?.direction === "minimize" } : {};
  const points = (pts, name, marker, extra = {}) => ({
    type, mode: "markers", name, x: pts.map((t) => t.values[x]), y: pts.map((t) => t.values[y]),
    customdata: pts.map((t) => t.number), text: pts.map((t) => hoverText(t, catalog)),
    hovertemplate: "%{text}<extra></extra>", marker, ...extra,
  });
  const ordered = orderAlong(front, x, y);
  const traces = [
    points(dominated, `dominated (${dominated.length})`,
      { size: 6, opacity: 0.35, ...markerColour(dominated, c, FADED), ...scale }),
    points(infeasible, `infeasible (${infeasible.length})`,
      { size: 7, opacity: 0.35, symbol: "x", ...markerColour(infeasible, c, FADED), ...scale }),
    { type, mode: "lines", name: "front line", x: ordered.map((t) => t.values[x]),
      y: ordered.map((t) => t.values[y]), line: { color: ACCENT, width: 2 },
      hoverinfo: "skip", showlegend: false },
    points(ordered, `Pareto front (${front.length})`, {
      size: 11, opacity: 1, line: { color: c ? ACCENT : "#7c2d12", width: 2 },
      ...markerColour(ordered, c, ACCENT), ...scale,
      ...(c ? { colorbar: { title: { text: metricShort(catalog.get(c)), side: "right" } } } : {}),
    }),
  ];
  const pin = trials.find((t) => t.number === view.pinned);
  const pinOk = pin && Number.isFinite(pin.values?.[x]) && Number.isFinite(pin.values?.[y]);
  traces.push({
    type, mode: "markers", name: "pinned", x: pinOk ? [pin.values[x]] : [],
    y: pinOk ? [pin.values[y]] : [], customdata: pinOk ? [pin.number] : [],
    hoverinfo: "skip", showlegend: false,
    marker: { size: 20, symbol: "circle-open", color: "#111827", line: { width: 3 } },
  });
  return { traces, counts: { plotted: plotted.length, front: front.length, type } };
}

export function scatterLayout(view, catalog) {
  return {
    margin: { l: 70, r: 20, t: 30, b: 60 },
    xaxis: { title: { text: metricLabel(catalog.get(view.x)) }, zeroline: false,
      automargin: true },
    yaxis: { title: { text: metricLabel(catalog.get(view.y)) }, zeroline: false,
      automargin: true },
    legend: { orientation: "h", y: 1.08, x: 0 },
    hovermode: "closest",
    hoverlabel: { align: "left" },
    // keep the user's zoom across live updates; reset when the axes change
    uirevision: `${view.x}|${view.y}`,
    font: { family: "system-ui, DejaVu Sans, sans-serif", size: 13 },
  };
}

export function hypervolumeFigure(hv) {
  const data = hv.data || [];
  const ref = hv.reference_point ? hv.reference_point.map(fmt).join(", ") : "not fixed yet";
  return {
    data: [{ type: "scatter", mode: "lines+markers", line: { shape: "hv", color: ACCENT },
      x: data.map((p) => p.trial_number), y: data.map((p) => p.hypervolume),
      hovertemplate: "after trial #%{x}: %{y:.4g}<extra></extra>", name: "hypervolume" }],
    layout: {
      margin: { l: 70, r: 20, t: 30, b: 50 },
      xaxis: { title: { text: "trial number" }, rangemode: "tozero" },
      yaxis: { title: { text: `hypervolume (reference: ${ref})` }, automargin: true },
      uirevision: "hv",
      font: { family: "system-ui, DejaVu Sans, sans-serif", size: 13 },
    },
    config: PLOT_CONFIG,
  };
}
