// Studies page: list with status filter, progress, best hypervolume; pick studies to compare.
import {
  TERMINAL, escapeHtml, fmt, fmtDate, getJSON, markReady, progressBar, showError, statusBadge,
} from "./common.js";

const PAGE = 50;
const REFRESH_MS = 3000;
const params = new URLSearchParams(location.search);
const state = {
  status: params.get("status") || "",
  offset: Math.max(0, parseInt(params.get("offset") || "0", 10) || 0),
  picked: new Set(),
  timer: null,
};

const $ = (id) => document.getElementById(id);
const filter = $("status-filter");
filter.value = state.status;

function objectivesText(study) {
  return (study.objectives || [])
    .map((o) => `${o.direction === "maximize" ? "↑" : "↓"} ${o.key}`).join(", ");
}

/** The list compares studies: the problem-normalised hypervolume (0..1, same box for every
 * study of a problem); the study's own-reference value is in the tooltip. */
function hvTitle(s) {
  const own = `own reference: ${fmt(s.best_hypervolume)}`;
  const ref = s.extra?.problem_reference;
  return escapeHtml(ref && ref.missing ? `${ref.message} (${own})` : own);
}

function row(s) {
  const checked = state.picked.has(s.id) ? "checked" : "";
  return `<tr data-id="${s.id}">
    <td><input type="checkbox" class="pick" value="${s.id}" ${checked}
      aria-label="Pick study ${s.id} to compare"></td>
    <td class="num">${s.id}</td>
    <td class="wrap"><a href="/studies/${s.id}">${escapeHtml(s.name)}</a>${
  (s.tags || []).map((t) => ` <span class="tag">${escapeHtml(t)}</span>`).join("")}</td>
    <td>${statusBadge(s.status)}</td>
    <td>${progressBar(s.progress)}</td>
    <td class="num">${fmt(s.n_complete)} ✓ / ${fmt(s.n_failed)} ✗ of ${fmt(s.n_trials)}</td>
    <td class="num hv" title="${hvTitle(s)}">${fmt(s.hypervolume_normalised)}</td>
    <td>${escapeHtml(s.search_space)}</td>
    <td class="wrap">${escapeHtml(objectivesText(s))}</td>
    <td>${escapeHtml(fmtDate(s.created_at))}</td>
  </tr>`;
}

async function load() {
  const q = new URLSearchParams({ offset: state.offset, limit: PAGE });
  if (state.status) q.set("status", state.status);
  try {
    const page = await getJSON(`/studies?${q}`);
    showError($("error"), null);
    document.querySelector("#studies tbody").innerHTML = page.data.map(row).join("");
    $("empty").hidden = page.data.length > 0;
    const last = Math.min(state.offset + page.data.length, page.count);
    $("page-info").textContent = page.count
      ? `${state.offset + 1}–${last} of ${page.count}` : "0 studies";
    $("prev").disabled = state.offset === 0;
    $("next").disabled = state.offset + PAGE >= page.count;
    const active = page.data.some((s) => !TERMINAL.has(s.status));
    $("live").textContent = active ? "live: refreshing while studies run" : "";
    $("live").classList.toggle("on", active);
    schedule(active);
  } catch (err) {
    showError($("error"), err);
    schedule(true);
  }
  markReady();
}

function schedule(again) {
  clearTimeout(state.timer);
  if (again) state.timer = setTimeout(() => (document.hidden ? schedule(true) : load()), REFRESH_MS);
}

function syncUrl() {
  const q = new URLSearchParams();
  if (state.status) q.set("status", state.status);
  if (state.offset) q.set("offset", state.offset);
  history.replaceState(null, "", q.toString() ? `/?${q}` : "/");
}

filter.addEventListener("change", () => {
  state.status = filter.value;
  state.offset = 0;
  syncUrl();
  load();
});
$("prev").addEventListener("click", () => {
  state.offset = Math.max(0, state.offset - PAGE);
  syncUrl();
  load();
});
$("next").addEventListener("click", () => {
  state.offset += PAGE;
  syncUrl();
  load();
});
document.querySelector("#studies tbody").addEventListener("change", (ev) => {
  if (!ev.target.classList.contains("pick")) return;
  const id = Number(ev.target.value);
  if (ev.target.checked) state.picked.add(id); else state.picked.delete(id);
  $("compare-selected").disabled = state.picked.size < 1;
});
$("compare-selected").addEventListener("click", () => {
  location.href = `/compare?ids=${[...state.picked].join(",")}`;
});

load();
