// "My clips": the caller's jobs, newest first (GET /api/jobs), with their status and links.

import { api, query } from "./api.js";
import { $, h, fill, say } from "./dom.js";
import { when } from "./timecode.js";

let cursor = null;

export function setupClipsPage() {
  $("clips-more").addEventListener("click", () => load(false));
}

export async function showClipsPage() {
  await load(true);
}

async function load(fresh) {
  const status = $("clips-status");
  say(status, "");
  try {
    const page = await api("/api/jobs" + query({ limit: 20, cursor: fresh ? null : cursor }));
    cursor = page.nextCursor;
    const list = $("clips-list");
    if (fresh) list.replaceChildren();
    if (fresh && page.items.length === 0) {
      fill(list, h("p", { class: "empty", text: "No clips yet. Make one on the first page." }));
    } else {
      let table = list.querySelector("tbody");
      if (!table) {
        list.append(clipsTable());
        table = list.querySelector("tbody");
      }
      for (const job of page.items) table.append(row(job));
    }
    $("clips-more").hidden = !cursor;
  } catch (error) {
    say(status, error.full || String(error), "error");
  }
}

function clipsTable() {
  return h(
    "div",
    { class: "scroll" },
    h(
      "table",
      {},
      h("thead", {}, h("tr", {}, ...["Made", "Range", "Status", "Clip"].map((t) => h("th", { scope: "col", text: t })))),
      h("tbody"),
    ),
  );
}

function row(job) {
  const cell = h("td");
  if (job.status === "done") {
    cell.append(
      h("button", {
        type: "button",
        class: "quiet",
        text: "Get link",
        "aria-label": `Get the link to the clip made ${when(job.createdAt)}`,
        onclick: () => link(job.id, cell),
      }),
    );
  } else if (job.error) {
    cell.textContent = job.error.message;
  }
  return h(
    "tr",
    { "data-job-id": job.id },
    h("td", { text: new Date(job.createdAt).toLocaleString() }),
    h("td", { text: `${job.start} – ${job.end}` }),
    h("td", {}, h("span", { class: `badge ${job.status}`, text: job.status })),
    cell,
  );
}

async function link(id, cell) {
  try {
    const result = await api(`/api/jobs/${id}/result`);
    fill(
      cell,
      h("a", { href: result.video.url, download: "", text: "Download" }),
      h("span", { class: "hint", text: ` expires ${when(result.video.expiresAt)}` }),
    );
  } catch (error) {
    fill(cell, h("span", { class: "message", "data-kind": "error", text: error.full || String(error) }));
  }
}
