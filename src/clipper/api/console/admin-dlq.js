// Dead letters grouped by error code (GET /api/dlq/groups), with requeue and discard of one,
// a group or all, each asking first. On a server without the group routes the page groups
// GET /api/dlq itself and requeues one by one; discarding needs the server's routes.

import { api } from "./api.js";
import { confirmAction } from "./dialog.js";
import { $, fill, h, say } from "./dom.js";
import { when } from "./timecode.js";

export async function showDeadLetters() {
  const box = $("tab-dlq");
  const message = h("p", { class: "message", id: "dlq-message", role: "alert", hidden: true });
  try {
    const [groups, letters] = await Promise.all([groupsOrNull(), api("/api/dlq?limit=500")]);
    const grouped = groups ?? groupLocally(letters);
    if (!grouped.length) {
      fill(box, message, h("p", { class: "empty", text: "No dead letters. Every failed job has been dealt with." }));
      return;
    }
    const all = h("div", { class: "row" },
      h("button", { type: "button", text: "Requeue all", onclick: () => requeue({ all: true }, "every dead letter", letters, message) }),
      h("button", { type: "button", class: "danger", text: "Discard all", onclick: () => discard({ all: true }, "every dead letter", message) }),
    );
    fill(box, message, all, ...grouped.map((group) => groupCard(group, letters, message)));
  } catch (error) {
    fill(box, h("p", { class: "message", "data-kind": "error", text: error.full || String(error) }));
  }
}

async function groupsOrNull() {
  try {
    return await api("/api/dlq/groups");
  } catch (error) {
    if (error.missing) return null;
    throw error;
  }
}

function codeOf(letter) {
  return letter.reason || letter.payload?.code || "UNKNOWN"; // the group code is the reason
}

function groupLocally(letters) {
  const groups = new Map();
  for (const letter of letters) {
    const code = codeOf(letter);
    const group = groups.get(code) || { code, count: 0, sample: { jobId: letter.jobId, message: letter.payload?.message || letter.reason, createdAt: letter.createdAt } };
    group.count += 1;
    groups.set(code, group);
  }
  return [...groups.values()];
}

function groupCard(group, letters, message) {
  const members = letters.filter((l) => codeOf(l) === group.code);
  return h(
    "article",
    { class: "card", "data-code": group.code },
    h("h3", {}, h("span", { class: "mono", text: group.code }), ` — ${group.count}`),
    h("p", { class: "hint", text: `e.g. ${group.sample?.message || ""} (${when(group.sample?.createdAt)})` }),
    h("div", { class: "row" },
      h("button", { type: "button", text: "Requeue the group", onclick: () => requeue({ code: group.code }, `the ${group.count} dead letters of ${group.code}`, members, message) }),
      h("button", { type: "button", class: "danger", text: "Discard the group", onclick: () => discard({ code: group.code }, `the ${group.count} dead letters of ${group.code}`, message) }),
    ),
    h("ul", { class: "letters" }, ...members.map((letter) => h("li", { "data-job-id": letter.jobId },
      h("a", { href: `/console/#/admin/jobs/${letter.jobId}`, class: "mono", text: letter.jobId.slice(0, 8) }),
      h("span", { class: "hint", text: ` ${when(letter.createdAt)} ` }),
      h("button", { type: "button", text: "Requeue", "aria-label": `Requeue job ${letter.jobId}`, onclick: () => requeueOne(letter.jobId, message) }),
      h("button", { type: "button", class: "danger", text: "Discard", "aria-label": `Discard the dead letter of job ${letter.jobId}`, onclick: () => discardOne(letter.jobId, message) }),
    ))),
  );
}

async function requeueOne(id, message) {
  if (!(await confirmAction(`Requeue job ${id}? It runs again with fresh attempts.`, "Requeue", false))) return;
  try {
    await api(`/api/dlq/${id}/requeue`, { method: "POST" });
    await showDeadLetters();
    say($("dlq-message"), `Requeued job ${id}.`, "ok");
  } catch (error) {
    say(message, error.full || String(error), "error");
  }
}

async function requeue(body, what, members, message) {
  if (!(await confirmAction(`Requeue ${what}? They run again with fresh attempts.`, "Requeue", false))) return;
  try {
    let count;
    try {
      count = (await api("/api/dlq/requeue", { method: "POST", body })).requeued;
    } catch (error) {
      if (!error.missing) throw error;
      // A server without the bulk route: one at a time.
      for (const letter of members) await api(`/api/dlq/${letter.jobId}/requeue`, { method: "POST" });
      count = members.length;
    }
    await showDeadLetters();
    say($("dlq-message"), `Requeued ${count}.`, "ok");
  } catch (error) {
    say(message, error.full || String(error), "error");
  }
}

async function discardOne(id, message) {
  if (!(await confirmAction(`Discard the dead letter of job ${id}? The job stays failed.`, "Discard"))) return;
  await discardAt(`/api/dlq/${id}/discard`, undefined, message);
}

async function discard(body, what, message) {
  if (!(await confirmAction(`Discard ${what}? The jobs stay failed; this cannot be undone.`, "Discard"))) return;
  await discardAt("/api/dlq/discard", body, message);
}

async function discardAt(path, body, message) {
  try {
    const answer = await api(path, { method: "POST", body });
    await showDeadLetters();
    say($("dlq-message"), `Discarded ${answer?.discarded ?? 1}.`, "ok");
  } catch (error) {
    say(message, error.missing ? "Discarding is not available on this server." : error.full || String(error), "error");
  }
}
