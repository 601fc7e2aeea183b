// Study page "Manage" panel: rename, tag, annotate, extend/resume, cancel and delete a study
// over the REST API (PATCH, POST .../resume, POST .../cancel, DELETE).
import { TERMINAL, sendJSON, showError } from "./common.js";

const $ = (id) => document.getElementById(id);
let editDirty = false; // the user is typing: live updates must not overwrite the form

/** Fill the form from the study (unless the user is editing) and enable what its state allows. */
export function renderManage(s) {
  if (!editDirty) {
    $("edit-name").value = s.name;
    $("edit-tags").value = (s.tags || []).join(", ");
    $("edit-notes").value = s.notes || "";
  }
  const done = TERMINAL.has(s.status);
  $("resume").disabled = !done;
  $("cancel").disabled = done || s.cancel_requested;
  $("delete").disabled = s.status === "running";
  $("delete").title = s.status === "running" ? "cancel it first" : "";
  const input = $("resume-trials");
  input.min = String(s.n_complete + s.n_failed + 1);
  if (!input.value || Number(input.value) < Number(input.min)) {
    input.value = String(Math.max(s.n_trials * 2, Number(input.min)));
  }
}

async function manage(action, okText) {
  $("manage-msg").textContent = "…";
  try {
    await action();
    $("manage-msg").textContent = okText;
    showError($("error"), null);
  } catch (err) {
    $("manage-msg").textContent = "";
    showError($("error"), err);
  }
}

/**
 * Wire the panel of study ``studyId``: ``changed(study)`` receives the study each action returns;
 * ``follow()`` restarts live updates (a resumed study runs again); ``stop()`` ends them.
 */
export function wireManage(studyId, { changed, follow, stop }) {
  const form = $("edit-form");
  form.addEventListener("input", () => { editDirty = true; });
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const tags = $("edit-tags").value.split(",").map((t) => t.trim()).filter(Boolean);
    manage(async () => {
      const study = await sendJSON("PATCH", `/studies/${studyId}`,
        { name: $("edit-name").value, tags, notes: $("edit-notes").value });
      editDirty = false;
      changed(study);
    }, "saved");
  });
  $("resume").addEventListener("click", () => manage(async () => {
    changed(await sendJSON("POST", `/studies/${studyId}/resume`,
      { budget: { trials: Number($("resume-trials").value) } }));
    follow();
  }, "queued again"));
  $("cancel").addEventListener("click", () => manage(async () => {
    changed(await sendJSON("POST", `/studies/${studyId}/cancel`));
  }, "cancel requested"));
  $("delete").addEventListener("click", () => {
    if (!window.confirm(`Delete study #${studyId} and all its trials? This cannot be undone.`)) {
      return;
    }
    manage(async () => {
      await sendJSON("DELETE", `/studies/${studyId}`);
      stop();
      location.assign("/");
    }, "deleted");
  });
}
