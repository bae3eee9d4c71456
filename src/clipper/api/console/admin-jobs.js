// Jobs for the operator: search with filters (GET /api/jobs with status, priority, keyId,
// createdAfter, createdBefore), and one job's page: its event timeline (retried attempts
// with their errors), attempts, error and, for a dead letter, its trace; cancel or requeue.

import { api, query } from "./api.js";
import { confirmAction } from "./dialog.js";
import { $, fill, h, say } from "./dom.js";
import { subtitlesNote, subtitlesSummary } from "./subtitles.js";

let cursor = null;

export function setupJobsSearch() {
  $("job-filters").addEventListener("submit", (event) => {
    event.preventDefault();
    search(true);
  });
  $("jobs-more").addEventListener("click", () => search(false));
}

export function showJobsSearch() {
  search(true);
}

function iso(id) {
  const value = /** @type {HTMLInputElement} */ ($(id)).value;
  return value ? new Date(value).toISOString() : null;
}

async function search(fresh) {
  const value = (id) => /** @type {HTMLInputElement} */ ($(id)).value.trim();
  const params = {
    status: value("f-status"),
    priority: value("f-priority"),
    keyId: value("f-key"),
    createdAfter: iso("f-after"),
    createdBefore: iso("f-before"),
    limit: 50,
    cursor: fresh ? null : cursor,
  };
  const list = $("jobs-list");
  try {
    const page = await api("/api/jobs" + query(params));
    cursor = page.nextCursor;
    if (fresh) list.replaceChildren();
    if (fresh && !page.items.length) {
      fill(list, h("p", { class: "empty", text: "No jobs match." }));
    } else {
      if (!list.querySelector("tbody")) list.append(jobsTable());
      list.querySelector("tbody").append(...page.items.map(jobRow));
    }
    $("jobs-more").hidden = !cursor;
  } catch (error) {
    fill(list, h("p", { class: "message", "data-kind": "error", text: error.full || String(error) }));
  }
}

function jobsTable() {
  const heads = ["Job", "Key", "Status", "Priority", "Range", "Attempts", "Made"];
  return h(
    "div",
    { class: "scroll" },
    h("table", {}, h("thead", {}, h("tr", {}, ...heads.map((t) => h("th", { scope: "col", text: t })))), h("tbody")),
  );
}

function jobRow(job) {
  return h(
    "tr",
    { "data-job-id": job.id },
    h("td", {}, h("a", { href: `/console/#/admin/jobs/${job.id}`, class: "mono", text: job.id.slice(0, 8) })),
    h("td", { class: "mono", "data-key-id": job.keyId, text: keyLabel(job.keyId) }),
    h("td", {}, h("span", { class: `badge ${job.status}`, text: job.status })),
    h("td", { text: job.priority }),
    h("td", { text: `${job.start} – ${job.end}` }),
    h("td", { text: String(job.attempts) }),
    h("td", { text: new Date(job.createdAt).toLocaleString() }),
  );
}

/** Whose job it is: an API key's id, or the one tenant of a server with keys off. */
function keyLabel(keyId) {
  if (!keyId) return "—"; // a server from before keyId
  return keyId === "local" ? "local (no key)" : keyId;
}

/** A failed job's dead-letter record, or null when it has none (failed without a retry, or
 * discarded) or the server has no such route. */
async function deadLetterOf(id) {
  try {
    return await api(`/api/dlq/${id}`);
  } catch (error) {
    if (error.missing) return null;
    throw error;
  }
}

/** The dead letter's last error: its code and message, and the traceback folded away. */
function traceOf(letter) {
  const error = letter.error;
  return h(
    "section",
    { id: "job-trace", "data-code": error.code },
    h("h3", { text: "Last error" }),
    h("p", {}, h("span", { class: "mono", text: error.code }), `: ${error.message}`),
    h("p", { class: "hint", text: `Dead-lettered after ${letter.attempts} attempt${letter.attempts === 1 ? "" : "s"}${error.type ? ` (${error.type})` : ""}.` }),
    error.traceback
      ? h("details", { class: "trace" }, h("summary", { text: "Traceback" }), h("pre", { text: error.traceback }))
      : h("p", { class: "hint", text: "No traceback was kept." }),
  );
}

/** One job's page. */
export async function showJobPage(id) {
  const box = $("tab-job");
  fill(box, h("p", { class: "hint", text: "Loading…" }));
  try {
    const [job, events] = await Promise.all([api(`/api/jobs/${id}`), api(`/api/jobs/${id}/events`)]);
    // Only a job that was dead-lettered (a `dlq` event) has a record: asking for any other
    // (one failed for its request's fault, never retried) would be a 404, a console error.
    const letter = job.status === "failed" && events.some((event) => event.type === "dlq")
      ? await deadLetterOf(id)
      : null;
    const actions = h("div", { class: "row" },
      h("button", { type: "button", text: "Refresh", onclick: () => showJobPage(id) }),
    );
    const message = h("p", { class: "message", role: "alert", hidden: true });
    if (job.status === "queued" || job.status === "processing") {
      actions.append(h("button", { type: "button", class: "danger", text: "Cancel the job", onclick: () => act(id, "cancel", message) }));
    }
    if (job.status === "failed") {
      actions.append(h("button", { type: "button", class: "primary", text: "Requeue the job", onclick: () => act(id, "requeue", message) }));
    }
    fill(
      box,
      h("h2", {}, "Job ", h("span", { class: "mono", text: job.id })),
      h(
        "dl",
        { class: "facts" },
        ...fact("Status", h("span", { class: `badge ${job.status}`, "data-status": job.status, text: job.status })),
        ...fact("Priority", job.priority),
        ...fact("Progress", `${job.progress}%`),
        ...fact("Key", h("span", { class: "mono", "data-key-id": job.keyId, text: keyLabel(job.keyId) })),
        ...fact("Attempts", String(job.attempts)),
        ...fact("Source", job.sourceType === "upload" ? job.uploadKey : job.youtubeUrl),
        ...fact("Range", `${job.start} – ${job.end}`),
        ...fact("Made", new Date(job.createdAt).toLocaleString()),
        ...(job.subtitles ? fact("Subtitles", subtitlesFact(job.subtitles)) : []),
        ...(job.error ? fact("Error", `${job.error.code}: ${job.error.message}`) : []),
      ),
      actions,
      message,
      letter ? traceOf(letter) : null,
      h("h3", { text: "Events" }),
      h("ol", { class: "events" }, ...collapse(events).map(eventItem)),
    );
  } catch (error) {
    fill(box, h("p", { class: "message", "data-kind": "error", text: error.full || String(error) }));
  }
}

/** Where a done job's subtitles came from, and why they are empty when they are. */
function subtitlesFact(made) {
  const note = subtitlesNote(made);
  return h(
    "span",
    { "data-subtitles": made.source },
    subtitlesSummary(made),
    note ? h("span", { class: "hint", text: ` ${note}` }) : null,
  );
}

function fact(label, value) {
  return [h("dt", { text: label }), h("dd", {}, value ?? "—")];
}

/** Progress comes a percent at a time: one line per stage run, from its first to its last. */
function collapse(events) {
  const out = [];
  for (const event of events) {
    const last = out.at(-1);
    if (event.type === "progress" && last?.type === "progress" && last.payload.stage === event.payload.stage) {
      out[out.length - 1] = { ...event, payload: { ...event.payload, pct: `${last.payload.pct.toString().split("–")[0]}–${event.payload.pct}` } };
    } else {
      out.push(event);
    }
  }
  return out;
}

function eventItem(event) {
  if (event.type === "retry") return retryItem(event);
  const details = Object.entries(event.payload || {})
    .map(([k, v]) => `${k}: ${typeof v === "object" ? JSON.stringify(v) : v}`)
    .join(", ");
  return h(
    "li",
    { "data-type": event.type },
    h("time", { datetime: event.createdAt, text: new Date(event.createdAt).toLocaleTimeString() }),
    " ",
    h("strong", { text: event.type }),
    details ? h("span", { class: "hint", text: ` ${details}` }) : null,
  );
}

/** A failed attempt that runs again: which one, its error, and when the next one starts. */
function retryItem(event) {
  const { attempt, error, next_run_at: next } = event.payload || {};
  return h(
    "li",
    { "data-type": "retry", class: "retry" },
    h("time", { datetime: event.createdAt, text: new Date(event.createdAt).toLocaleTimeString() }),
    " ",
    h("strong", { text: `attempt ${attempt ?? "?"} failed` }),
    h("span", { class: "hint", text: next ? ` retried at ${new Date(next).toLocaleTimeString()}` : "" }),
    error ? h("pre", { class: "retry-error", text: String(error) }) : null,
  );
}

async function act(id, what, message) {
  const question = what === "cancel" ? "Cancel this job? It stops and ends cancelled." : "Requeue this job? It runs again with fresh attempts.";
  if (!(await confirmAction(question, what === "cancel" ? "Cancel the job" : "Requeue", what === "cancel"))) return;
  try {
    const path = what === "cancel" ? `/api/jobs/${id}/cancel` : `/api/dlq/${id}/requeue`;
    await api(path, { method: "POST" });
    await showJobPage(id);
  } catch (error) {
    say(message, error.full || String(error), "error");
  }
}
