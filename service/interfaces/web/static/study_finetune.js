// The fine-tuning stage's panel: the front before and after fine-tuning side by side
// (study.extra.finetune, written by service/engine/finetune.py), progress, seconds per candidate and
// the pruned training subset when the stage used one.
import { escapeHtml, fmt } from "./common.js";

/** HTML of the panel, or "" when the study has no fine-tuning stage yet. */
export function finetuneHtml(ft) {
  if (!ft || !Array.isArray(ft.front_before)) return "";
  const after = new Set((ft.front_after || []).map((p) => p.number));
  const done = new Map((ft.per_candidate || []).map((c) => [c.number, c]));
  const keys = Object.keys(ft.front_before[0]?.values || {});
  const head = ["trial", ...keys.map((k) => `${k} before`), "after", "seconds", "front after"];
  const rows = ft.front_before.map((p) => {
    const c = done.get(p.number);
    const tuned = c?.after ? Object.entries(c.after).map(([k, v]) => `${k} ${fmt(v)}`)
      .join(", ") : (c?.error ? `failed: ${c.error}` : "not fine-tuned");
    return [`#${p.number}`, ...keys.map((k) => fmt(p.values[k])), tuned,
      c ? fmt(c.seconds) : "—", after.has(p.number) ? "yes" : ""];
  });
  const cells = (r, tag) => `<tr>${r.map((v) => `<${tag}>${escapeHtml(v)}</${tag}>`).join("")}</tr>`;
  const pruning = ft.pruning?.chosen !== undefined && ft.pruning?.chosen !== null
    ? (() => {
      const s = (ft.pruning.subsets || []).find((x) => x.max_rate === ft.pruning.chosen);
      return s ? ` · trained on ${fmt(s.size)} of ${fmt(s.of)} examples (success rate ≤ ` +
        `${fmt(s.max_rate)})` : "";
    })() : "";
  return `<p id="finetune-summary">${escapeHtml(ft.state ?? "")} · ` +
    `${fmt(ft.progress?.done)}/${fmt(ft.progress?.total)} candidates · ` +
    `hypervolume ${fmt(ft.hypervolume_before)} → ${fmt(ft.hypervolume_after)}` +
    `${escapeHtml(pruning)}</p>` +
    `<table id="finetune-table"><thead>${cells(head, "th")}</thead>` +
    `<tbody>${rows.map((r) => cells(r, "td")).join("")}</tbody></table>`;
}
