// Study page: loads a study and all its trials, draws them, and polls for new trials while the
// study runs (no reload: new trials are merged and the charts redrawn with Plotly.react).
import {
  API, ARCH, PLOT_CONFIG, TERMINAL, archCatalog, escapeHtml, fieldValue, fillSelect, fmt,
  fmtDate, getJSON, markReady, metricCatalog, metricShort, plotlyReady, progressBar, readJSON,
  showError, statusBadge,
} from "./common.js";
import { importanceHtml, parcoordsFigure, splomFigure } from "./study_analysis.js";
import { finetuneHtml } from "./study_finetune.js";
import { renderManage, wireManage } from "./study_manage.js";
import { accuracyHtml, constraintsHtml, renderNotes } from "./study_notes.js";
import { STAGE, hypervolumeFigure, scatterLayout, scatterTraces } from "./study_plot.js";
import { detailsHtml, qualityHtml, renderTable, tableColumns } from "./study_table.js";

const POLL_MS = 1500;
const PAGE_LIMIT = 10000; // the API's largest trials page
const $ = (id) => document.getElementById(id);
const match = location.pathname.match(/^\/studies\/(\d+)\/?$/);
const studyId = match ? Number(match[1]) : null;

const state = {
  study: null,
  trials: new Map(), // number -> trial (plotting columns only)
  full: new Map(), // number -> full trial record, fetched when pinned
  sorted: [], // trials by number
  hv: { reference_point: null, data: [] },
  hvRef: "study", // the curve's reference: the study's own, or the problem's box (0-1)
  catalog: new Map(), // metrics
  arch: new Map(), // architecture dimensions as plot fields ("arch:width")
  view: { x: null, y: null, c: "", pinned: null, filter: null, logX: false, logY: false },
  importance: null, // the server's answer, with the trial count it was computed for
  table: { sort: "number", desc: false, filter: "all", page: 0, pageSize: 50, pinned: null },
  watermark: -1, // every trial number <= watermark is loaded
  plotted: false,
  renderMs: 0, // how long the last redraw took
  stages: 0, // distinct search stages seen (the colour menu offers "stage" when > 1)
  timer: null,
};

// ---------------------------------------------------------------- data
function merge(trials) {
  for (const t of trials) state.trials.set(t.number, t);
  state.sorted = [...state.trials.values()].sort((a, b) => a.number - b.number);
  while (state.trials.has(state.watermark + 1)) state.watermark += 1;
  // Trial numbers may be persisted out of order by parallel workers; once every finished trial
  // is here, nothing below the highest number can still be missing.
  const s = state.study;
  if (s && state.trials.size >= s.n_complete + s.n_failed && state.sorted.length) {
    state.watermark = Math.max(state.watermark, state.sorted[state.sorted.length - 1].number);
  }
}

/** Trials numbered above ``after`` from the columnar /points route (no ``info``: see full()). */
async function fetchTrials(after, pending = null) {
  const q = after >= 0 ? `?after=${after}` : "";
  const { columns } = await (pending ? readJSON(pending)
    : getJSON(`/studies/${studyId}/points${q}`));
  const names = Object.keys(columns);
  return columns.number.map((_, i) => {
    const t = {};
    for (const k of names) t[k] = columns[k][i];
    return t;
  });
}

/** The full record of one trial (with ``info``: sources, devices, predictions), cached. */
async function full(number) {
  if (!state.full.has(number)) {
    const page = await getJSON(`/studies/${studyId}/trials?after=${number - 1}&limit=1`);
    const t = page.data[0];
    if (!t || t.number !== number) throw new Error(`trial ${number} not found`);
    state.full.set(number, t);
  }
  return state.full.get(number);
}

/** Every full trial record, page by page (for the JSON download). */
async function allFull() {
  const out = [];
  for (let offset = 0; ; offset += PAGE_LIMIT) {
    const page = await getJSON(`/studies/${studyId}/trials?offset=${offset}&limit=${PAGE_LIMIT}`);
    out.push(...page.data);
    if (page.data.length < PAGE_LIMIT || offset + PAGE_LIMIT >= page.count) return out;
  }
}

// ---------------------------------------------------------------- rendering
function renderSummary() {
  const s = state.study;
  document.title = `${s.name} · ParetoNAS`;
  $("title").textContent = `Study #${s.id}: ${s.name}`;
  $("compare-link").href = `/compare?ids=${s.id}`;
  const live = !TERMINAL.has(s.status);
  const objectives = (s.objectives || []).map((o) =>
    `${o.direction === "maximize" ? "↑" : "↓"} ${escapeHtml(metricShort(o))}`).join(", ");
  $("summary").innerHTML = [
    `<div>${statusBadge(s.status)}</div>`,
    `<div>${progressBar(s.progress)}</div>`,
    `<div>trials <b>${fmt(s.n_complete)}</b> complete, <b>${fmt(s.n_failed)}</b> failed of ` +
      `<b>${fmt(s.n_trials)}</b></div>`,
    `<div title="the front's hypervolume on the problem's box (comparable across studies)">` +
      `hypervolume <b id="hv-normalised">${fmt(s.hypervolume_normalised)}</b> (0–1)</div>`,
    `<div title="against the study's own reference point (not comparable across studies)">` +
      `own-reference hypervolume <b>${fmt(s.best_hypervolume)}</b></div>`,
    `<div>space <b>${escapeHtml(s.search_space)}</b></div>`,
    `<div>strategy <b>${escapeHtml(s.spec?.strategy?.name ?? "—")}</b></div>`,
    accuracyHtml(s),
    `<div>objectives ${objectives}</div>`,
    constraintsHtml(s),
    `<div class="muted">created ${escapeHtml(fmtDate(s.created_at))}</div>`,
    (s.tags || []).length ? `<div class="tags">${s.tags.map((t) =>
      `<span class="tag">${escapeHtml(t)}</span>`).join(" ")}</div>` : "",
    s.notes ? `<div class="notes-text" id="notes-text">${escapeHtml(s.notes)}</div>` : "",
    `<div class="live ${live ? "on" : ""}" id="live">${live ? "live" : ""}</div>`,
    s.error ? `<div class="error">${escapeHtml(s.error)}</div>` : "",
  ].join("");
  renderNotes(s);
  renderManage(s);
  const quality = qualityHtml(s.extra?.predictor_quality);
  $("quality").hidden = !quality;
  $("quality-body").innerHTML = quality;
  const finetune = finetuneHtml(s.extra?.finetune);
  $("finetune").hidden = !finetune;
  $("finetune-body").innerHTML = finetune;
}

/** Metrics and architecture dimensions: what the axes, colour and filter can use. */
function fields() {
  return new Map([...state.catalog, ...state.arch]);
}

function renderAxes() {
  const keys = [...state.catalog.values()];
  const all = [...fields().values()];
  const opts = all.map((m) => ({ value: m.key, label: metricShort(m) }));
  const v = state.view;
  const known = fields();
  if (!v.x || !known.has(v.x)) v.x = keys[0]?.key ?? null;
  if (!v.y || !known.has(v.y)) v.y = keys[1]?.key ?? keys[0]?.key ?? null;
  fillSelect($("x-axis"), opts, v.x);
  fillSelect($("y-axis"), opts, v.y);
  const stages = new Set(state.sorted.map((t) => t.stage));
  const extra = stages.size > 1 ? [{ value: STAGE, label: "search stage" }] : [];
  fillSelect($("c-axis"), [{ value: "", label: "none" }, ...opts, ...extra], v.c);
  const dims = [...state.arch.values()].filter((f) => f.values.length > 1);
  fillSelect($("f-dim"), [{ value: "", label: "all trials" },
    ...dims.map((f) => ({ value: f.key, label: `arch: ${f.dim}` }))], v.filter?.dim ?? "");
  renderFilterValues();
}

function renderFilterValues() {
  const f = state.view.filter;
  const field = f?.dim ? state.arch.get(f.dim) : null;
  $("f-value").disabled = !field;
  fillSelect($("f-value"), field ? field.values.map((x) => ({ value: String(x), label: String(x) }))
    : [], f?.value);
  if (field && f.value === undefined) f.value = String(field.values[0]);
}

/** Log scales only for numeric fields whose drawn values are all positive. */
function renderScaleControls() {
  for (const [axis, box, flag] of [["x", "log-x", "logX"], ["y", "log-y", "logY"]]) {
    const key = state.view[axis];
    const field = fields().get(key);
    const ok = key && !(field?.dim && !field.numeric) && state.sorted.some((t) => t.state === "complete")
      && state.sorted.every((t) => t.state !== "complete" || !(fieldValue(t, key) <= 0));
    $(box).disabled = !ok;
    if (!ok) state.view[flag] = false;
    $(box).checked = state.view[flag];
    $(box).parentElement.title = ok ? "" : "a log scale needs positive numbers on this axis";
  }
}

async function renderScatter() {
  const Plotly = await plotlyReady();
  const el = $("scatter");
  if (!state.view.x) {
    el.innerHTML = '<p class="muted">No finished trial yet.</p>';
    return;
  }
  renderScaleControls();
  const { traces, counts } = scatterTraces(state.sorted, state.view, fields(),
    state.study.spec?.constraints || []);
  const f = state.view.filter;
  $("counts").textContent = `${fmt(counts.plotted)} trials drawn, ${fmt(counts.front)} on the front`
    + (f?.dim ? ` (only ${f.dim.slice(ARCH.length)} = ${f.value})` : "");
  el.dataset.front = counts.front;
  el.dataset.plotted = counts.plotted;
  el.dataset.render = counts.type;
  await Plotly.react(el, traces, scatterLayout(state.view, fields()), PLOT_CONFIG);
  if (!state.plotted) {
    state.plotted = true;
    el.on("plotly_click", (ev) => {
      const p = ev.points?.[0];
      if (p && Array.isArray(p.customdata)) pin(p.customdata[0]);
    });
  }
}

// ---------------------------------------------------------------- analysis panels
async function renderAnalysis() {
  const objectives = (state.study.objectives || []).length;
  $("splom-panel").hidden = objectives < 3;
  const Plotly = await plotlyReady();
  if ($("pc-panel").open) {
    const fig = parcoordsFigure(state.sorted, state.catalog, state.arch);
    $("parcoords").dataset.dimensions = fig.count;
    await Plotly.react($("parcoords"), fig.data, fig.layout, fig.config);
  }
  if ($("splom-panel").open && objectives >= 3) {
    const fig = splomFigure(state.sorted, state.catalog);
    $("splom").dataset.dimensions = fig.count;
    $("splom").style.height = `${fig.layout.height}px`; // the matrix grows with the objectives
    await Plotly.react($("splom"), fig.data, fig.layout, fig.config);
  }
  if ($("imp-panel").open) await renderImportance();
}

async function renderImportance() {
  const n = state.study.n_complete;
  if (!state.importance || state.importance.at !== n) {
    $("imp-note").textContent = "computing…";
    state.importance = { at: n, body: await getJSON(`/studies/${studyId}/importance`) };
  }
  const body = state.importance.body;
  const table = importanceHtml(body, state.catalog);
  $("imp-note").textContent = body.message
    || `${body.method}, over ${fmt(body.subsampled_to ?? body.n_trials)} measured trials`
      + (body.subsampled_to ? ` (an even sample of ${fmt(body.n_trials)})` : "")
      + ". A share is the part of the objective's variance a dimension explains.";
  $("importance").hidden = !table.count;
  $("importance").dataset.dimensions = table.count;
  $("importance").innerHTML = table.html;
}

function hvPath() {
  return `/studies/${studyId}/hypervolume` + (state.hvRef === "problem" ? "?reference=problem" : "");
}

async function renderHypervolume() {
  const Plotly = await plotlyReady();
  const fig = hypervolumeFigure(state.hv);
  const empty = fig.data[0].x.length === 0;
  $("hv-empty").hidden = !empty;
  if (empty && state.hvRef === "problem") {
    $("hv-empty").textContent = state.hv.problem_reference?.message
      || "No hypervolume on the problem's box yet (no feasible trial).";
  } else if (empty && state.study && TERMINAL.has(state.study.status)) {
    $("hv-empty").textContent = state.study.extra?.no_feasible
      ? "No hypervolume: the study ended without a feasible trial (see Warnings above)."
      : "No hypervolume: the study ended before its reference point was fixed.";
  }
  $("hypervolume").hidden = empty; // no empty axes: drawn once there is a point (then sized)
  if (empty) return;
  await Plotly.react($("hypervolume"), fig.data, fig.layout, fig.config);
}

function renderTrialsTable() {
  const cols = tableColumns(state.catalog);
  state.table.pinned = state.view.pinned;
  const { total, pages } = renderTable($("trials"), state.sorted, cols, state.table);
  const t = state.table;
  $("page-info").textContent = `page ${t.page + 1} of ${pages} (${fmt(total)} trials)`;
  $("prev").disabled = t.page === 0;
  $("next").disabled = t.page >= pages - 1;
}

async function renderDetails() {
  const number = state.view.pinned;
  const t = state.trials.get(number);
  if (!t) {
    $("details-body").innerHTML = '<p class="muted">Click a point or a table row to see a trial.</p>';
    return;
  }
  // draw what is loaded at once, then the full record (device measurements, predictions)
  const known = state.full.get(number);
  $("details-body").innerHTML = detailsHtml({ ...t, ...(known || {}), on_front: t.on_front },
    state.catalog);
  if (known) return;
  try {
    const rec = await full(number);
    if (state.view.pinned === number) {
      $("details-body").innerHTML = detailsHtml({ ...rec, on_front: t.on_front }, state.catalog);
    }
  } catch (err) {
    showError($("error"), err);
  }
}

async function renderAll() {
  renderSummary();
  const before = state.catalog.size;
  state.catalog = metricCatalog(state.study, state.sorted);
  const archBefore = [...state.arch.values()].map((f) => f.values.length).join();
  state.arch = archCatalog(state.sorted);
  const archNow = [...state.arch.values()].map((f) => f.values.length).join();
  const stages = new Set(state.sorted.map((t) => t.stage)).size;
  if (state.catalog.size !== before || !state.view.x || stages !== state.stages
      || archBefore !== archNow) renderAxes();
  state.stages = stages;
  renderTrialsTable();
  renderDetails();
  await renderScatter();
  await renderHypervolume();
  await renderAnalysis();
}

function pin(number, { focus = false } = {}) {
  state.view.pinned = number;
  history.replaceState(null, "", `#trial=${number}`);
  renderDetails();
  renderTrialsTable();
  renderScatter();
  if (focus) $("details").focus();
}

// ---------------------------------------------------------------- live updates
async function poll() {
  try {
    const study = await getJSON(`/studies/${studyId}`);
    const fresh = await fetchTrials(state.watermark);
    const changed = fresh.some((t) => !state.trials.has(t.number))
      || study.status !== state.study.status || study.n_complete !== state.study.n_complete;
    state.study = study;
    if (changed) {
      const [front, hv] = await Promise.all([
        getJSON(`/studies/${studyId}/pareto`), getJSON(hvPath())]);
      merge(fresh);
      // A new trial can push older ones off the front: take membership from the API's front.
      const onFront = new Set(front.data.map((t) => t.number));
      for (const t of state.trials.values()) t.on_front = onFront.has(t.number);
      for (const t of front.data) if (!state.trials.has(t.number)) state.trials.set(t.number, t);
      state.hv = hv;
      const t0 = performance.now();
      await renderAll();
      state.renderMs = performance.now() - t0;
    } else {
      renderSummary();
    }
    showError($("error"), null);
  } catch (err) {
    showError($("error"), err);
  }
  schedule();
}

function schedule() {
  clearTimeout(state.timer);
  if (state.study && TERMINAL.has(state.study.status)) return; // final state drawn: stop
  // a big study takes a while to redraw: poll less often than that, so the page stays usable
  const wait = Math.max(POLL_MS, 4 * (state.renderMs || 0));
  state.timer = setTimeout(() => (document.hidden ? schedule() : poll()), wait);
}

// ---------------------------------------------------------------- downloads
function download(name, type, text) {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

function wireControls() {
  for (const [id, key] of [["x-axis", "x"], ["y-axis", "y"], ["c-axis", "c"]]) {
    $(id).addEventListener("change", (ev) => {
      state.view[key] = ev.target.value;
      renderScatter();
    });
  }
  $("f-dim").addEventListener("change", (ev) => {
    state.view.filter = ev.target.value ? { dim: ev.target.value, value: undefined } : null;
    renderFilterValues();
    renderScatter();
  });
  $("f-value").addEventListener("change", (ev) => {
    state.view.filter.value = ev.target.value;
    renderScatter();
  });
  for (const [id, flag] of [["log-x", "logX"], ["log-y", "logY"]]) {
    $(id).addEventListener("change", (ev) => {
      state.view[flag] = ev.target.checked;
      renderScatter();
    });
  }
  $("hv-ref").addEventListener("change", async (ev) => {
    state.hvRef = ev.target.value;
    try {
      state.hv = await getJSON(hvPath());
      await renderHypervolume();
    } catch (err) {
      showError($("error"), err);
    }
  });
  for (const id of ["pc-panel", "splom-panel", "imp-panel"]) {
    $(id).addEventListener("toggle", () => {
      if ($(id).open) renderAnalysis().catch((err) => showError($("error"), err));
    });
  }
  $("trials").tHead.addEventListener("click", (ev) => {
    const b = ev.target.closest("button[data-sort]");
    if (!b) return;
    const t = state.table;
    t.desc = t.sort === b.dataset.sort ? !t.desc : false;
    t.sort = b.dataset.sort;
    t.page = 0;
    renderTrialsTable();
    $("trials").querySelector(`button[data-sort="${CSS.escape(t.sort)}"]`)?.focus();
  });
  const body = $("trials").tBodies[0];
  body.addEventListener("click", (ev) => {
    const tr = ev.target.closest("tr[data-number]");
    if (tr) pin(Number(tr.dataset.number));
  });
  body.addEventListener("keydown", (ev) => {
    const tr = ev.target.closest("tr[data-number]");
    if (tr && (ev.key === "Enter" || ev.key === " ")) {
      ev.preventDefault();
      pin(Number(tr.dataset.number), { focus: true });
    }
  });
  $("table-filter").addEventListener("change", (ev) => {
    state.table.filter = ev.target.value;
    state.table.page = 0;
    renderTrialsTable();
  });
  $("page-size").addEventListener("change", (ev) => {
    state.table.pageSize = Number(ev.target.value);
    state.table.page = 0;
    renderTrialsTable();
  });
  $("prev").addEventListener("click", () => { state.table.page -= 1; renderTrialsTable(); });
  $("next").addEventListener("click", () => { state.table.page += 1; renderTrialsTable(); });
  const base = `${API}/studies/${studyId}`;
  $("dl-front-csv").href = `${base}/pareto.csv`;
  $("dl-front-csv").download = `study-${studyId}-front.csv`;
  $("dl-front-json").href = `${base}/pareto`;
  $("dl-front-json").download = `study-${studyId}-front.json`;
  // the server's export: every metric, constraint values, sources, stage, errors
  $("dl-trials-csv").href = `${base}/trials.csv`;
  $("dl-trials-csv").download = `study-${studyId}-trials.csv`;
  $("dl-trials-json").addEventListener("click", (ev) => {
    ev.preventDefault();
    allFull().then((trials) => download(`study-${studyId}-trials.json`, "application/json",
      JSON.stringify({ study: state.study, trials }, null, 1)))
      .catch((err) => showError($("error"), err));
  });
}

// ---------------------------------------------------------------- start
async function start() {
  if (studyId === null) {
    showError($("error"), new Error("no study id in the address (expected /studies/<id>)"));
    return;
  }
  wireControls();
  wireManage(studyId, {
    changed: (study) => { state.study = study; renderSummary(); },
    follow: () => schedule(),
    stop: () => clearTimeout(state.timer),
  });
  try {
    const early = window.__prefetch || {}; // started by the inline script in study.html
    delete window.__prefetch;
    const [study, trials, hv] = await Promise.all([
      early.study ? readJSON(early.study) : getJSON(`/studies/${studyId}`),
      fetchTrials(-1, early.points),
      early.hypervolume ? readJSON(early.hypervolume) : getJSON(`/studies/${studyId}/hypervolume`),
    ]);
    state.study = study;
    state.hv = hv;
    merge(trials);
    performance.mark("viewer-data");
    const hash = location.hash.match(/^#trial=(\d+)$/);
    if (hash && state.trials.has(Number(hash[1]))) state.view.pinned = Number(hash[1]);
    await renderAll();
    markReady();
  } catch (err) {
    showError($("error"), err);
    // no study (a 404) or no server: the message only, not an empty page skeleton under it
    for (const el of document.querySelectorAll("main > :not(h1):not(#error)")) el.hidden = true;
    if (!state.study) $("title").textContent = `Study ${studyId ?? ""}`.trim();
    markReady();
    return;
  }
  schedule();
}

start();
