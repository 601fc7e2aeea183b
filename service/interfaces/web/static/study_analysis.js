// Study page analysis views: parallel coordinates, the scatter matrix of 3-4 objectives, and the
// dimension importance per objective (computed by the server with Optuna's fANOVA evaluator).
// Each is drawn only while its panel is open, so a big study's first paint does not pay for it.
import {
  PLOT_CONFIG, escapeHtml, fieldValue, hasValue, metricLabel, metricShort,
} from "./common.js";

const ACCENT = "#c2410c";
const FONT = { family: "system-ui, DejaVu Sans, sans-serif", size: 13 };
const FRONT_SCALE = [[0, "#9ca3af"], [1, ACCENT]];

function complete(trials) {
  return trials.filter((t) => t.state === "complete");
}

/** One parcoords axis per objective/metric and per architecture dimension (categorical
 * dimensions as numbered ticks); lines of front trials in the accent colour. */
export function parcoordsFigure(trials, metrics, arch) {
  const rows = complete(trials);
  const dimensions = [];
  for (const m of metrics.values()) {
    if (!rows.some((t) => hasValue(t.values?.[m.key]))) continue;
    dimensions.push({ label: metricShort(m), values: rows.map((t) => t.values?.[m.key] ?? NaN) });
  }
  for (const f of arch.values()) {
    if (f.values.length < 2) continue; // a fixed dimension says nothing
    if (f.numeric) { // ticks at the dimension's own choices (not 1.5, 2.5 between them)
      dimensions.push({ label: f.dim, values: rows.map((t) => fieldValue(t, f.key)),
        ...(f.values.length <= 12 ? { tickvals: f.values } : {}) });
    } else {
      dimensions.push({ label: f.dim, values: rows.map((t) => f.values.indexOf(fieldValue(t, f.key))),
        tickvals: f.values.map((_, i) => i), ticktext: f.values.map(String) });
    }
  }
  return {
    data: [{ type: "parcoords", dimensions,
      line: { color: rows.map((t) => (t.on_front ? 1 : 0)), colorscale: FRONT_SCALE,
        cmin: 0, cmax: 1 } }],
    layout: { margin: { l: 60, r: 60, t: 50, b: 30 }, font: FONT },
    config: PLOT_CONFIG,
    count: dimensions.length,
  };
}

/** Pairwise scatter plots of the objectives (3 or 4), the front in the accent colour. */
export function splomFigure(trials, metrics) {
  const objectives = [...metrics.values()].filter((m) => m.objective);
  const rows = complete(trials).filter((t) => objectives.every((m) => hasValue(t.values?.[m.key])));
  const axes = {};
  objectives.forEach((m, i) => {
    const n = i === 0 ? "" : i + 1;
    axes[`xaxis${n}`] = { title: { text: metricLabel(m, { arrow: false }), font: { size: 11 } } };
    axes[`yaxis${n}`] = { title: { text: metricLabel(m, { arrow: false }), font: { size: 11 } } };
  });
  return {
    data: [{ type: "splom", showupperhalf: false, diagonal: { visible: false },
      dimensions: objectives.map((m) => ({ label: metricShort(m),
        values: rows.map((t) => t.values[m.key]) })),
      customdata: rows.map((t) => t.number),
      hovertemplate: "trial #%{customdata}<extra></extra>",
      marker: { size: 5, color: rows.map((t) => (t.on_front ? 1 : 0)), colorscale: FRONT_SCALE,
        cmin: 0, cmax: 1, opacity: 0.7 } }],
    layout: { margin: { l: 70, r: 20, t: 20, b: 60 }, height: 180 * objectives.length + 80,
      dragmode: "select", hovermode: "closest", font: FONT, ...axes },
    config: PLOT_CONFIG,
    count: objectives.length,
  };
}

/**
 * A table: one row per dimension (most important first, by its largest share), one column per
 * objective, each cell a bar as wide as the dimension's share of that objective's variance.
 * (HTML rather than a bar chart: the viewer's plotly bundle carries scatter plots only.)
 */
export function importanceHtml(body, metrics) {
  const objectives = Object.entries(body.objectives || {});
  const dims = [...new Set(objectives.flatMap(([, shares]) => Object.keys(shares)))];
  const top = (d) => Math.max(...objectives.map(([, shares]) => shares[d] ?? 0));
  dims.sort((a, b) => top(b) - top(a) || a.localeCompare(b));
  const head = objectives.map(([key]) =>
    `<th scope="col">${escapeHtml(metrics.get(key) ? metricShort(metrics.get(key)) : key)}</th>`);
  const rows = dims.map((d) => `<tr data-dim="${escapeHtml(d)}"><th scope="row">${escapeHtml(d)}</th>${
    objectives.map(([key, shares]) => {
      const v = shares[d] ?? 0;
      return `<td data-objective="${escapeHtml(key)}" data-share="${v}">` +
        `<span class="bar" style="width:${(100 * v).toFixed(1)}%"></span>` +
        `<span class="share">${(100 * v).toFixed(1)}%</span></td>`;
    }).join("")}</tr>`);
  return { html: dims.length ? `<table class="data importance"><thead><tr><th scope="col">dimension</th>${
    head.join("")}</tr></thead><tbody>${rows.join("")}</tbody></table>` : "", count: dims.length };
}
