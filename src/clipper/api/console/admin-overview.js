// The queue's overview: counts per queue and priority, the oldest waiting job's age, the
// last hour's charts, pause and resume, and the workers online. Live from
// GET /api/admin/overview/stream; without that route, GET /api/admin/overview every 5 s.

import { api } from "./api.js";
import { lineChart, perMinute } from "./charts.js";
import { confirmAction } from "./dialog.js";
import { $, fill, h, notAvailable, say } from "./dom.js";
import { readStream } from "./sse.js";
import { age, when } from "./timecode.js";

/** @type {AbortController | null} */
let live = null;

export function showOverview() {
  live?.abort();
  drawn = { overview: "", workers: "" };
  live = new AbortController();
  run(live.signal);
}

export function stopOverview() {
  live?.abort();
  live = null;
}

async function run(signal) {
  const status = $("live");
  while (!signal.aborted) {
    try {
      await readStream("/api/admin/overview/stream", (event) => {
        if (event.event !== "overview") return;
        status.textContent = "Live.";
        render(JSON.parse(event.data));
        refreshWorkers();
      }, { signal });
    } catch (error) {
      if (signal.aborted) return;
      if (!error.missing) {
        say($("admin-status"), error.full || String(error), "error");
        if (error.status === 401 || error.status === 403) return;
      } else {
        return poll(signal);
      }
    }
    await wait(2000, signal);
  }
}

async function poll(signal) {
  $("live").textContent = "Refreshed every 5 s (this server has no live stream).";
  while (!signal.aborted) {
    try {
      render(await api("/api/admin/overview", { signal }));
    } catch (error) {
      if (signal.aborted) return;
      if (error.missing) {
        fill($("queues"), notAvailable("The queue overview"));
        $("live").textContent = "";
      } else {
        say($("admin-status"), error.full || String(error), "error");
      }
    }
    await refreshWorkers();
    await wait(5000, signal);
  }
}

function wait(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

const COUNTS = [
  ["ready", "Ready"],
  ["scheduled", "Scheduled"],
  ["active", "Active"],
  ["failed", "Failed"],
  ["deadLettered", "Dead-lettered"],
];

// What was drawn last: an unchanged answer leaves the page alone, so focus and a pointer
// on a button stay where they are between live updates.
let drawn = { overview: "", workers: "" };

function render(overview) {
  const json = JSON.stringify(overview);
  if (json === drawn.overview) return;
  drawn.overview = json;
  say($("admin-status"), "");
  const queues = overview.queues || [];
  fill(
    $("queues"),
    queues.length ? queues.map(queueCard) : h("p", { class: "empty", text: "No queues yet." }),
  );
  const minutes = overview.minutes || [];
  const sums = perMinute(minutes, ["completed", "failed"]);
  lineChart(/** @type {any} */ ($("chart-throughput")), [
    { label: "completed", cls: "ok", values: sums.completed },
    { label: "failed", cls: "bad", values: sums.failed },
  ], "per min");
  const latency = perMinute(minutes.filter((m) => m.pickedUp), ["pickupAvgMs"], "avg");
  lineChart(/** @type {any} */ ($("chart-latency")), [
    { label: "average", cls: "ok", values: latency.pickupAvgMs },
  ], "ms");
}

function queueCard(queue) {
  const toggle = h("button", {
    type: "button",
    class: queue.paused ? "primary" : "",
    text: queue.paused ? "Resume" : "Pause",
    "aria-label": `${queue.paused ? "Resume" : "Pause"} the queue ${queue.queue}`,
    onclick: () => pauseOrResume(queue),
  });
  return h(
    "article",
    { class: "card queue", "data-queue": queue.queue },
    h("h3", {}, queue.queue, queue.paused ? h("span", { class: "badge failed", text: "paused" }) : null),
    h(
      "dl",
      { class: "counts" },
      ...COUNTS.flatMap(([key, label]) => [
        h("dt", { text: label }),
        h("dd", { "data-count": key, text: String(queue[key] ?? 0) }),
      ]),
      h("dt", { text: "Oldest waiting" }),
      h("dd", { text: age(queue.oldestWaitingSeconds) }),
    ),
    priorities(queue.priorities || []),
    toggle,
  );
}

// The queue's integer priorities as jobs name them (clipper.domain.jobs: lower runs first);
// another queue's own numbers show as they are.
const PRIORITY_NAMES = { 0: "fast (0)", 1: "normal (1)", 2: "bulk (2)" };

function priorities(rows) {
  if (!rows.length) return null;
  return h(
    "div",
    { class: "scroll" },
    h(
      "table",
      { class: "compact" },
      h("caption", { text: "By priority" }),
      h("thead", {}, h("tr", {}, ...["Priority", "Ready", "Scheduled", "Active"].map((t) => h("th", { scope: "col", text: t })))),
      h(
        "tbody",
        {},
        ...rows.map((p) =>
          h("tr", {}, h("td", { text: PRIORITY_NAMES[p.priority] || String(p.priority) }), h("td", { text: String(p.ready) }), h("td", { text: String(p.scheduled) }), h("td", { text: String(p.active) })),
        ),
      ),
    ),
  );
}

async function pauseOrResume(queue) {
  const verb = queue.paused ? "resume" : "pause";
  const question = queue.paused
    ? `Resume the queue ${queue.queue}? Workers take its jobs again.`
    : `Pause the queue ${queue.queue}? Workers take none of its jobs until it is resumed.`;
  if (!(await confirmAction(question, verb === "pause" ? "Pause" : "Resume", verb === "pause"))) return;
  try {
    await api(`/api/admin/queues/${encodeURIComponent(queue.queue)}/${verb}`, { method: "POST" });
    render(await api("/api/admin/overview"));
  } catch (error) {
    say($("admin-status"), error.missing ? "Pausing queues is not available on this server." : error.full, "error");
  }
}

async function refreshWorkers() {
  const box = $("workers");
  try {
    const workers = await api("/api/admin/workers");
    const json = JSON.stringify(workers);
    if (json === drawn.workers) return;
    drawn.workers = json;
    if (!workers.length) {
      fill(box, h("p", { class: "empty", text: "No workers online." }));
      return;
    }
    fill(
      box,
      h(
        "div",
        { class: "scroll" },
        h(
          "table",
          {},
          h("thead", {}, h("tr", {}, ...["Host", "PID", "Version", "Queues", "Concurrency", "Running", "Last heartbeat"].map((t) => h("th", { scope: "col", text: t })))),
          h("tbody", {}, ...workers.map(workerRow)),
        ),
      ),
    );
  } catch (error) {
    fill(box, error.missing ? notAvailable("The workers list") : h("p", { class: "message", "data-kind": "error", text: error.full }));
  }
}

function workerRow(worker) {
  const running = (worker.running || []).map((id) =>
    h("a", { href: `/console/#/admin/jobs/${id}`, class: "mono", "data-job-id": id, text: id.slice(0, 8) }),
  );
  return h(
    "tr",
    { "data-worker-id": worker.id },
    h("td", { text: worker.host }),
    h("td", { text: String(worker.pid) }),
    h("td", { text: worker.version }),
    h("td", { text: (worker.queues || []).join(", ") }),
    h("td", { text: String(worker.concurrency) }),
    h("td", {}, ...(running.length ? running : ["idle"])),
    h("td", { text: when(worker.heartbeatAt) }),
  );
}
