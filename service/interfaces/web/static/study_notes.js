// Study page summary parts: the accuracy mode (and whether it screens), the constraints, and the
// warnings the server recorded (extra.warnings) with why a study has no feasible trial.
import { escapeHtml, fmt } from "./common.js";

const $ = (id) => document.getElementById(id);

function warningsOf(s) {
  return Array.isArray(s.extra?.warnings) ? s.extra.warnings : [];
}

export function accuracyHtml(s) {
  const mode = s.spec?.accuracy?.mode;
  if (!mode || mode === "measured") return "";
  // The server says when the mode cannot screen (every trial is measured then).
  const idle = warningsOf(s).some((w) => w.code === "accuracy_not_screened");
  return `<div>accuracy <b>${escapeHtml(mode)}</b> ` + (idle
    ? `<span class="warn">(not screening: every trial measured)</span></div>`
    : `(${escapeHtml(s.spec.accuracy.predictor ?? "")} screen)</div>`);
}

export function constraintsHtml(s) {
  const cons = s.spec?.constraints || [];
  if (!cons.length) return "";
  const text = cons.map((c) => {
    const key = c.device ? `${c.metric}@${c.device}` : c.metric;
    const parts = [];
    if (c.min !== null && c.min !== undefined) parts.push(`≥ ${fmt(c.min)}`);
    if (c.max !== null && c.max !== undefined) parts.push(`≤ ${fmt(c.max)}`);
    return `${escapeHtml(key)} ${parts.join(" and ")}`;
  }).join("; ");
  return `<div id="constraints">constraints <b>${text}</b></div>`;
}

/** Warnings the server recorded (extra.warnings) and why a study has no feasible trial. */
export function renderNotes(s) {
  const items = warningsOf(s).map((w) =>
    `<li><code>${escapeHtml(w.field ?? "")}</code> ${escapeHtml(w.message ?? "")}</li>`);
  const why = s.extra?.no_feasible;
  if (why) items.unshift(`<li class="why"><b>No feasible trial:</b> ${escapeHtml(why.message)}</li>`);
  $("notes").hidden = !items.length;
  $("notes-list").innerHTML = items.join("");
}
