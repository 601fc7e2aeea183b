// Study page charts: the trials scatter (front highlighted) and the hypervolume history.
import {
  PLOT_CONFIG, fieldValue, fmt, hasValue, metricLabel, metricShort, orderAlong, scatterType,
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

function colourValue(t, cKey, categories) {
  if (cKey === STAGE) return t.stage;
  const v = fieldValue(t, cKey);
  if (categories) return hasValue(v) ? categories.indexOf(v) : null; // a category's index
  return v ?? null;
}

function markerColour(points, cKey, base, categories) {
  if (!cKey) return { color: base };
  return { color: points.map((t) => colourValue(t, cKey, categories)) };
}

/** Trials kept by the view's architecture filter (``{dim, value}``; value compared as text). */
export function applyFilter(trials, filter) {
  if (!filter || !filter.dim) return trials;
  return trials.filter((t) => String(fieldValue(t, filter.dim)) === filter.value);
}

/**
 * The 2-D front drawn as a staircase (attainment curve): between two front points sorted by x,
 * the line holds the first point's y until the second's x when x is minimised ("hv"), and
 * moves in y first when x is maximised ("vh"), so it bounds the region the front dominates.
 */
export function staircaseShape(catalog, x) {
  return catalog.get(x)?.direction === "maximize" ? "vh" : "hv";
}

/**
 * Traces for the scatter: dominated, infeasible, predicted-only, front line, front markers,
 * pinned ring.
 * ``view`` = {x, y, c, pinned}; ``catalog`` maps key -> metric description.
 */
export function scatterTraces(trials, view, catalog, constraints) {
  const { x, y, c } = view;
  const plotted = applyFilter(trials, view.filter).filter((t) => t.state === "complete"
    && hasValue(fieldValue(t, x)) && hasValue(fieldValue(t, y)));
  const front = [], dominated = [], infeasible = [], predicted = [];
  for (const t of plotted) {
    if (t.on_front) front.push(t);
    else if (!feasible(t, constraints)) infeasible.push(t);
    else if (t.accuracy === "predicted") predicted.push(t); // screened out, never measured
    else dominated.push(t);
  }
  const type = scatterType(plotted.length);
  const cField = c && c !== STAGE ? catalog.get(c) : null;
  const categories = cField && cField.dim && !cField.numeric ? cField.values : null;
  let cmin, cmax;
  if (c) {
    const cv = plotted.map((t) => colourValue(t, c, categories)).filter(Number.isFinite);
    cmin = Math.min(...cv);
    cmax = Math.max(...cv);
  }
  // coloured faded points get a thin outline: light colours would vanish on white otherwise
  const scale = c ? { colorscale: "Viridis", cmin, cmax,
    reversescale: catalog.get(c)?.direction === "minimize" } : {};
  const outline = c ? { line: { color: "#374151", width: 0.5 } } : {};
  const dims = [...new Set(plotted.slice(0, 50).flatMap((t) => Object.keys(t.arch || {})))];
  const keys = [...catalog.keys()].filter((k) => !catalog.get(k).dim);
  const hovertemplate = hoverTemplate(dims, new Map(keys.map((k) => [k, catalog.get(k)])));
  // uid: a stable name per trace (Plotly matches traces across redraws by it; tests find them)
  const points = (uid, pts, name, marker, extra = {}) => ({
    uid, type, mode: "markers", name, x: pts.map((t) => fieldValue(t, x)),
    y: pts.map((t) => fieldValue(t, y)), customdata: pts.map((t) => hoverData(t, dims, keys)),
    hovertemplate, marker, ...extra,
  });
  // a trade-off curve only between two objectives (an arch dimension has no direction)
  const curveOk = catalog.get(x)?.direction && catalog.get(y)?.direction;
  const ordered = orderAlong(front, x, y);
  const curve = curveOk ? orderAlong(front2d(front, x, y, catalog), x, y) : [];
  const colourbar = c ? { colorbar: {
    ...(c === STAGE ? { dtick: 1 } : {}),
    ...(categories ? { tickvals: categories.map((_, i) => i), ticktext: categories.map(String) }
      : {}),
    title: { side: "right", text: c === STAGE ? "search stage" : metricShort(catalog.get(c)) },
  } } : {};
  const traces = [
    points("dominated", dominated, `dominated (${dominated.length})`,
      { size: 7, opacity: 0.45, ...markerColour(dominated, c, FADED, categories), ...scale,
        ...outline }),
    points("infeasible", infeasible, `infeasible (${infeasible.length})`,
      { size: 8, opacity: 0.45, symbol: "x", ...markerColour(infeasible, c, FADED, categories),
        ...scale, ...outline }, { showlegend: infeasible.length > 0 }),
    points("predicted", predicted, `accuracy predicted, not measured (${predicted.length})`,
      { size: 8, opacity: 0.6, symbol: "diamond-open",
        ...markerColour(predicted, c, FADED, categories), ...scale },
      { showlegend: predicted.length > 0 }),
    { uid: "line", type, mode: "lines", name: "front (staircase)",
      x: curve.map((t) => fieldValue(t, x)), y: curve.map((t) => fieldValue(t, y)),
      line: { color: ACCENT, width: 2, shape: staircaseShape(catalog, x) },
      hoverinfo: "skip", showlegend: false },
    points("front", ordered, `Pareto front (${front.length})`, {
      size: 11, opacity: 1, line: { color: c ? ACCENT : "#7c2d12", width: 2 },
      ...markerColour(ordered, c, ACCENT, categories), ...scale, ...colourbar,
    }),
  ];
  const pin = trials.find((t) => t.number === view.pinned);
  const pinOk = pin && hasValue(fieldValue(pin, x)) && hasValue(fieldValue(pin, y));
  traces.push({
    uid: "pinned", type, mode: "markers", name: "pinned", x: pinOk ? [fieldValue(pin, x)] : [],
    y: pinOk ? [fieldValue(pin, y)] : [], customdata: pinOk ? [[pin.number]] : [],
    hoverinfo: "skip", showlegend: false,
    marker: { size: 20, symbol: "circle-open", color: "#111827", line: { width: 3 } },
  });
  return { traces, counts: { plotted: plotted.length, front: front.length, type } };
}

function axisType(field, log) {
  if (field?.dim && !field.numeric) return "category";
  return log ? "log" : "linear";
}

export function scatterLayout(view, catalog) {
  const fx = catalog.get(view.x), fy = catalog.get(view.y);
  return {
    margin: { l: 70, r: 20, t: 30, b: 60 },
    xaxis: { title: { text: metricLabel(fx) }, zeroline: false, automargin: true,
      type: axisType(fx, view.logX) },
    yaxis: { title: { text: metricLabel(fy) }, zeroline: false, automargin: true,
      type: axisType(fy, view.logY) },
    legend: { orientation: "h", y: 1.08, x: 0 },
    hovermode: "closest",
    hoverlabel: { align: "left" },
    // keep the user's zoom across live updates; reset when the axes or scales change
    uirevision: `${view.x}|${view.y}|${view.logX}|${view.logY}`,
    font: { family: "system-ui, DejaVu Sans, sans-serif", size: 13 },
  };
}

/** The curve's points, held at its last value up to the study's last finished trial (the
 * hypervolume did not change after the last improvement; the curve should say so). */
export function hypervolumeSteps(hv) {
  const data = (hv.data || []).map((p) => [p.trial_number, p.hypervolume]);
  const last = hv.last_trial;
  if (data.length && Number.isInteger(last) && last > data[data.length - 1][0]) {
    data.push([last, data[data.length - 1][1]]);
  }
  return data;
}

export function hypervolumeFigure(hv) {
  const data = hypervolumeSteps(hv);
  const improved = (hv.data || []).length;
  const ref = hv.reference === "problem"
    ? "the problem's box (each objective scaled to 0-1; comparable across studies)"
    : `reference point: ${hv.reference_point ? hv.reference_point.map(fmt).join(", ")
      : "not fixed yet"}`;
  return {
    data: [{ type: "scatter", mode: "lines+markers", line: { shape: "hv", color: ACCENT },
      x: data.map((p) => p[0]), y: data.map((p) => p[1]),
      // no marker on the held end point: it is not an improvement
      marker: { size: data.map((_, i) => (i < improved ? 6 : 0)) },
      hovertemplate: "after trial #%{x}: %{y:.4g}<extra></extra>", name: "hypervolume" }],
    layout: {
      margin: { l: 70, r: 20, t: 30, b: 50 },
      xaxis: { title: { text: "trial number" }, rangemode: "tozero" },
      yaxis: { title: { text: "hypervolume" }, automargin: true },
      annotations: [{ text: ref, xref: "paper", yref: "paper", x: 0,
        y: 1.08, showarrow: false, xanchor: "left", font: { size: 12, color: "#5b6576" } }],
      uirevision: "hv",
      font: { family: "system-ui, DejaVu Sans, sans-serif", size: 13 },
    },
    config: PLOT_CONFIG,
  };
}
