// Study page charts: the trials scatter (front highlighted) and the hypervolume history.
import {
  PLOT_CONFIG, fmt, metricLabel, metricShort, orderAlong, scatterType,
} from "./common.js";

const ACCENT = "#c2410c";
const FADED = "#6b7280";

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

/**
 * The part of the study's front that is non-dominated on the two drawn axes. With more than two
 * objectives the front seen in a 2-D projection is not a curve; joining only these points keeps
 * the line a readable trade-off. Axes with no known direction: join the whole front.
 */
export function front2d(front, x, y, catalog) {
  const dx = catalog.get(x)?.direction, dy = catalog.get(y)?.direction;
  if (!dx || !dy) return front;
  const sx = dx === "maximize" ? -1 : 1, sy = dy === "maximize" ? -1 : 1;
  const loss = front.map((t) => [sx * t.values[x], sy * t.values[y]]);
  return front.filter((_, i) => !loss.some((o, j) => j !== i && o[0] <= loss[i][0]
    && o[1] <= loss[i][1] && (o[0] < loss[i][0] || o[1] < loss[i][1])));
}

/**
 * Hover labels without one string per point (10,000 strings cost more than the drawing): each
 * point carries [number, front flag, ...arch values, ...metric values] as customdata and one
 * template per study lays them out, only for the point hovered.
 */
function hoverTemplate(dims, catalog) {
  const arch = [];
  dims.forEach((d, i) => {
    arch.push(`${d}=%{customdata[${i + 2}]}`);
  });
  const lines = ["<b>trial #%{customdata[0]}</b>%{customdata[1]}"];
  for (let i = 0; i < arch.length; i += 4) lines.push(arch.slice(i, i + 4).join(", "));
  [...catalog.values()].forEach((m, j) => {
    lines.push(`${m.key}: %{customdata[${dims.length + 2 + j}]:,.4~r}${m.unit ? " " + m.unit : ""}`);
  });
  return lines.join("<br>") + "<extra></extra>";
}

function hoverData(t, dims, keys) {
  const row = [t.number, t.on_front ? " · on the front" : ""];
  for (const d of dims) {
    const v = t.arch?.[d];
    row.push(Array.isArray(v) ? `[${v.join(",")}]` : v ?? "—");
  }
  for (const k of keys) row.push(t.values?.[k] ?? "—");
  return row;
}

/** Colour-by option for the search stage of two-stage studies (not a metric). */
export const STAGE = "@stage";

function colourValue(t, cKey) {
  return cKey === STAGE ? t.stage : t.values[cKey] ?? null;
}

function markerColour(points, cKey, base) {
  if (!cKey) return { color: base };
  return { color: points.map((t) => colourValue(t, cKey)) };
}

/**
 * Traces for the scatter: dominated, infeasible, predicted-only, front line, front markers,
 * pinned ring.
 * ``view`` = {x, y, c, pinned}; ``catalog`` maps key -> metric description.
 */
export function scatterTraces(trials, view, catalog, constraints) {
  const { x, y, c } = view;
  const plotted = trials.filter((t) => t.state === "complete"
    && Number.isFinite(t.values?.[x]) && Number.isFinite(t.values?.[y]));
  const front = [], dominated = [], infeasible = [], predicted = [];
  for (const t of plotted) {
    if (t.on_front) front.push(t);
    else if (!feasible(t, constraints)) infeasible.push(t);
    else if (t.accuracy === "predicted") predicted.push(t); // screened out, never measured
    else dominated.push(t);
  }
  const type = scatterType(plotted.length);
  let cmin, cmax;
  if (c) {
    const cv = plotted.map((t) => colourValue(t, c)).filter(Number.isFinite);
    cmin = Math.min(...cv);
    cmax = Math.max(...cv);
  }
  // coloured faded points get a thin outline: light colours would vanish on white otherwise
  const scale = c ? { colorscale: "Viridis", cmin, cmax,
    reversescale: catalog.get(c)?.direction === "minimize" } : {};
  const outline = c ? { line: { color: "#374151", width: 0.5 } } : {};
  const dims = [...new Set(plotted.slice(0, 50).flatMap((t) => Object.keys(t.arch || {})))];
  const keys = [...catalog.keys()];
  const hovertemplate = hoverTemplate(dims, catalog);
  // uid: a stable name per trace (Plotly matches traces across redraws by it; tests find them)
  const points = (uid, pts, name, marker, extra = {}) => ({
    uid, type, mode: "markers", name, x: pts.map((t) => t.values[x]),
    y: pts.map((t) => t.values[y]), customdata: pts.map((t) => hoverData(t, dims, keys)),
    hovertemplate, marker, ...extra,
  });
  const ordered = orderAlong(front, x, y);
  const curve = orderAlong(front2d(front, x, y, catalog), x, y);
  const traces = [
    points("dominated", dominated, `dominated (${dominated.length})`,
      { size: 7, opacity: 0.45, ...markerColour(dominated, c, FADED), ...scale, ...outline }),
    points("infeasible", infeasible, `infeasible (${infeasible.length})`,
      { size: 8, opacity: 0.45, symbol: "x", ...markerColour(infeasible, c, FADED), ...scale,
        ...outline }, { showlegend: infeasible.length > 0 }),
    points("predicted", predicted, `accuracy predicted, not measured (${predicted.length})`,
      { size: 8, opacity: 0.6, symbol: "diamond-open", ...markerColour(predicted, c, FADED),
        ...scale }, { showlegend: predicted.length > 0 }),
    { uid: "line", type, mode: "lines", name: "front line", x: curve.map((t) => t.values[x]),
      y: curve.map((t) => t.values[y]), line: { color: ACCENT, width: 2 },
      hoverinfo: "skip", showlegend: false },
    points("front", ordered, `Pareto front (${front.length})`, {
      size: 11, opacity: 1, line: { color: c ? ACCENT : "#7c2d12", width: 2 },
      ...markerColour(ordered, c, ACCENT), ...scale,
      ...(c ? { colorbar: { ...(c === STAGE ? { dtick: 1 } : {}), title: { side: "right",
        text: c === STAGE ? "search stage" : metricShort(catalog.get(c)) } } } : {}),
    }),
  ];
  const pin = trials.find((t) => t.number === view.pinned);
  const pinOk = pin && Number.isFinite(pin.values?.[x]) && Number.isFinite(pin.values?.[y]);
  traces.push({
    uid: "pinned", type, mode: "markers", name: "pinned", x: pinOk ? [pin.values[x]] : [],
    y: pinOk ? [pin.values[y]] : [], customdata: pinOk ? [[pin.number]] : [],
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
      yaxis: { title: { text: "hypervolume" }, automargin: true },
      annotations: [{ text: `reference point: ${ref}`, xref: "paper", yref: "paper", x: 0,
        y: 1.08, showarrow: false, xanchor: "left", font: { size: 12, color: "#5b6576" } }],
      uirevision: "hv",
      font: { family: "system-ui, DejaVu Sans, sans-serif", size: 13 },
    },
    config: PLOT_CONFIG,
  };
}
