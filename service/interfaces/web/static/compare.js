// Compare page: the Pareto fronts of several studies on the same axes.
import {
  PLOT_CONFIG, TERMINAL, archText, escapeHtml, fillSelect, fmt, getJSON, markReady,
  metricLabel, metricShort, orderAlong, plotlyReady, showError, statusBadge, unitFromName,
} from "./common.js";

const PALETTE = ["#c2410c", "#1d4ed8", "#15803d", "#7e22ce", "#b45309", "#0f766e", "#be123c",
  "#4d7c0f", "#1e40af", "#86198f"];
const SYMBOLS = ["circle", "square", "diamond", "triangle-up", "cross", "star", "hexagon",
  "triangle-down", "pentagon", "x"];
const REFRESH_MS = 3000;
const $ = (id) => document.getElementById(id);

const rawIds = (new URLSearchParams(location.search).get("ids") || "").split(",")
  .map((s) => s.trim()).filter((s) => s !== "");
const badIds = rawIds.filter((s) => !/^[1-9]\d*$/.test(s));
const state = {
  ids: [...new Set(rawIds.filter((s) => !badIds.includes(s)).map(Number))],
  studies: new Map(), // id -> StudyPublic
  fronts: new Map(), // id -> [TrialPublic]
  curves: new Map(), // id -> normalised hypervolume history (reference=problem)
  x: null,
  y: null,
  timer: null,
};

/** Metrics shared by all picked fronts (objective order of the first study first). */
function sharedMetrics() {
  const catalog = new Map();
  for (const id of state.ids) {
    for (const o of state.studies.get(id)?.objectives || []) {
      if (!catalog.has(o.key)) catalog.set(o.key, { ...o, unit: o.unit || unitFromName(o.metric) });
    }
  }
  const present = (id, key) => (state.fronts.get(id) || []).some((t) => key in (t.values || {}))
    || (state.studies.get(id)?.objectives || []).some((o) => o.key === key);
  const shared = [...catalog.values()].filter((m) => state.ids.every((id) => present(id, m.key)));
  return { catalog, shared: shared.length >= 2 ? shared : [...catalog.values()],
    partial: shared.length < 2 && state.ids.length > 1 };
}

function syncUrl() {
  history.replaceState(null, "", state.ids.length ? `/compare?ids=${state.ids.join(",")}`
    : "/compare");
}

async function loadPicker() {
  const page = await getJSON("/studies?limit=200");
  const known = new Map(page.data.map((s) => [s.id, s]));
  for (const id of state.ids) {
    if (!known.has(id)) {
      try { known.set(id, await getJSON(`/studies/${id}`)); } catch (err) { showError($("error"), err); }
    }
  }
  $("picker").innerHTML = [...known.values()].map((s) =>
    `<label><input type="checkbox" value="${s.id}" ${state.ids.includes(s.id) ? "checked" : ""}>
      #${s.id} ${escapeHtml(s.name)} <span class="muted">(${escapeHtml(s.status)})</span></label>`,
  ).join("") || '<span class="muted">No studies yet.</span>';
}

async function loadFronts() {
  const ids = state.ids.filter((id) => !state.fronts.has(id)
    || !TERMINAL.has(state.studies.get(id)?.status));
  await Promise.all(ids.map(async (id) => {
    const [study, front, curve] = await Promise.all([getJSON(`/studies/${id}`),
      getJSON(`/studies/${id}/pareto`), getJSON(`/studies/${id}/hypervolume?reference=problem`)]);
    state.studies.set(id, study);
    state.fronts.set(id, front.data);
    state.curves.set(id, curve);
  }));
}

/**
 * Hypervolume of each study's front on the two drawn axes, against one reference shared by all
 * picked studies (their worst drawn values pushed out by 10% of the range, as the service does
 * for one study). Each study's own best_hypervolume uses its own reference: not comparable.
 */
export function sharedHypervolume(fronts, x, y, catalog) {
  const sx = catalog.get(x)?.direction === "maximize" ? -1 : 1;
  const sy = catalog.get(y)?.direction === "maximize" ? -1 : 1;
  const loss = fronts.map((pts) => pts
    .filter((t) => Number.isFinite(t.values?.[x]) && Number.isFinite(t.values?.[y]))
    .map((t) => [sx * t.values[x], sy * t.values[y]]));
  const all = loss.flat();
  if (!all.length || !catalog.get(x)?.direction || !catalog.get(y)?.direction) return null;
  const ref = [0, 1].map((k) => {
    const hi = Math.max(...all.map((p) => p[k])), lo = Math.min(...all.map((p) => p[k]));
    return hi + 0.1 * (hi > lo ? hi - lo : Math.max(Math.abs(hi), 1));
  });
  const volumes = loss.map((pts) => {
    let hv = 0, prevB = ref[1];
    for (const [a, b] of pts.slice().sort((p, q) => p[0] - q[0] || p[1] - q[1])) {
      if (a < ref[0] && b < prevB) {
        hv += (ref[0] - a) * (prevB - b);
        prevB = b;
      }
    }
    return hv;
  });
  // a study with no point on these axes is not drawn: it has no hypervolume here (not 0)
  return { reference: [sx * ref[0], sy * ref[1]], volumes, drawn: loss.map((pts) => pts.length > 0) };
}

function hover(study, t, catalog) {
  const lines = [`<b>#${study.id} ${escapeHtml(study.name)}</b> · trial #${t.number}`,
    archText(t.arch)];
  for (const [k, v] of Object.entries(t.values || {})) {
    const unit = catalog.get(k)?.unit;
    lines.push(`${k}: ${fmt(v)}${unit ? " " + unit : ""}`);
  }
  return lines.join("<br>");
}

async function render() {
  const { catalog, shared, partial } = sharedMetrics();
  const opts = shared.map((m) => ({ value: m.key, label: metricShort(m) }));
  if (!shared.some((m) => m.key === state.x)) state.x = shared[0]?.key ?? null;
  if (!shared.some((m) => m.key === state.y)) state.y = shared[1]?.key ?? state.x;
  fillSelect($("x-axis"), opts, state.x);
  fillSelect($("y-axis"), opts, state.y);
  $("axes-note").textContent = partial
    ? "These studies share fewer than two metrics; studies lacking an axis are left out." : "";
  const traces = state.ids.map((id, i) => {
    const study = state.studies.get(id);
    const pts = orderAlong(state.fronts.get(id) || [], state.x, state.y);
    return {
      type: "scatter", mode: "lines+markers", name: `#${id} ${study?.name ?? ""} (${pts.length})`,
      x: pts.map((t) => t.values[state.x]), y: pts.map((t) => t.values[state.y]),
      customdata: pts.map((t) => t.number), text: pts.map((t) => hover(study, t, catalog)),
      hovertemplate: "%{text}<extra></extra>",
      line: { color: PALETTE[i % PALETTE.length], width: 2 },
      marker: { size: 9, symbol: SYMBOLS[i % SYMBOLS.length], color: PALETTE[i % PALETTE.length] },
    };
  });
  const el = $("compare");
  el.dataset.fronts = traces.filter((t) => t.x.length).length;
  const Plotly = await plotlyReady();
  await Plotly.react(el, traces, {
    margin: { l: 70, r: 20, t: 30, b: 60 },
    xaxis: { title: { text: metricLabel(catalog.get(state.x)) }, automargin: true },
    yaxis: { title: { text: metricLabel(catalog.get(state.y)) }, automargin: true },
    showlegend: true, legend: { orientation: "h", x: 0, y: 1.02, yanchor: "bottom" },
    hovermode: "closest", hoverlabel: { align: "left" },
    uirevision: `${state.x}|${state.y}`,
    font: { family: "system-ui, DejaVu Sans, sans-serif", size: 13 },
  }, PLOT_CONFIG);
  const common = sharedHypervolume(state.ids.map((id) => state.fronts.get(id) || []),
    state.x, state.y, catalog);
  $("shared-ref").textContent = common
    ? `(reference ${common.reference.map(fmt).join(", ")})` : "(needs two objectives)";
  document.querySelector("#fronts tbody").innerHTML = state.ids.map((id, i) => {
    const s = state.studies.get(id);
    if (!s) return "";
    return `<tr data-id="${id}"><td><a href="/studies/${id}">#${id} ${escapeHtml(s.name)}</a></td>
      <td>${statusBadge(s.status)}</td><td class="num">${fmt(state.fronts.get(id)?.length)}</td>
      <td class="num">${fmt(s.n_complete)} / ${fmt(s.n_trials)}</td>
      <td class="num shared-hv">${common && common.drawn[i] ? fmt(common.volumes[i]) : "—"}</td>
      <td class="num problem-hv">${fmt(s.hypervolume_normalised)}</td>
      <td class="num">${fmt(s.best_hypervolume)}</td>
      <td>${escapeHtml((s.objectives || []).map((o) => o.key).join(", "))}</td></tr>`;
  }).join("");
}

/** Every picked study's normalised hypervolume curve on one chart (one scale: the problem's
 * box), each held at its last value up to the study's last trial. */
async function renderCurves() {
  const traces = [], missing = [];
  state.ids.forEach((id, i) => {
    const curve = state.curves.get(id);
    const study = state.studies.get(id);
    if (!curve || !study) return;
    const pts = curve.data.map((p) => [p.trial_number, p.hypervolume]);
    if (pts.length && Number.isInteger(curve.last_trial) && curve.last_trial > pts.at(-1)[0]) {
      pts.push([curve.last_trial, pts.at(-1)[1]]);
    }
    if (!pts.length) {
      const why = curve.problem_reference?.message || "no feasible trial yet";
      missing.push(`#${id}: ${why}`);
      return;
    }
    traces.push({ type: "scatter", mode: "lines", name: `#${id} ${study.name}`, uid: `hv-${id}`,
      x: pts.map((p) => p[0]), y: pts.map((p) => p[1]),
      line: { shape: "hv", color: PALETTE[i % PALETTE.length], width: 2 },
      hovertemplate: `#${id} after trial %{x}: %{y:.4f}<extra></extra>` });
  });
  const el = $("hv-compare");
  el.dataset.curves = traces.length;
  $("hv-compare-note").textContent = missing.length ? `Not drawn: ${missing.join("; ")}` : "";
  const Plotly = await plotlyReady();
  await Plotly.react(el, traces, {
    margin: { l: 70, r: 20, t: 30, b: 50 },
    xaxis: { title: { text: "trial number" }, rangemode: "tozero" },
    yaxis: { title: { text: "hypervolume (problem box)" }, rangemode: "tozero" },
    legend: { orientation: "h", x: 0, y: 1.02, yanchor: "bottom" },
    font: { family: "system-ui, DejaVu Sans, sans-serif", size: 13 }, uirevision: "hv",
  }, PLOT_CONFIG);
}

async function refresh() {
  try {
    await loadFronts();
    showError($("error"), null);
  } catch (err) {
    showError($("error"), err);
  }
  await render();
  await renderCurves();
  clearTimeout(state.timer);
  const live = state.ids.some((id) => !TERMINAL.has(state.studies.get(id)?.status));
  if (live) state.timer = setTimeout(refresh, REFRESH_MS);
}

$("picker").addEventListener("change", (ev) => {
  const id = Number(ev.target.value);
  state.ids = ev.target.checked ? [...state.ids, id] : state.ids.filter((n) => n !== id);
  syncUrl();
  refresh();
});
for (const [id, key] of [["x-axis", "x"], ["y-axis", "y"]]) {
  $(id).addEventListener("change", (ev) => {
    state[key] = ev.target.value;
    render();
  });
}

(async () => {
  try {
    await loadPicker();
  } catch (err) {
    showError($("error"), err);
  }
  await refresh();
  if (badIds.length) {
    showError($("error"), new Error(`ids: ${badIds.map((s) => JSON.stringify(s)).join(", ")} ` +
      "ignored; expected study numbers separated by commas, e.g. ?ids=1,2"));
  }
  markReady();
})();
