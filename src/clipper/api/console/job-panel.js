// The clip being made: live status and stage, cancel while it runs, and once done the
// result: a preview player, download and copy-link buttons, when the link expires, and where
// the subtitles came from (with a link to them) when the job made some.

import { api } from "./api.js";
import { $, fill, h, say } from "./dom.js";
import { follow, TERMINAL } from "./follow.js";
import { subtitlesNote, subtitlesSummary } from "./subtitles.js";
import { when } from "./timecode.js";

const WORDS = {
  queued: "Waiting in the queue",
  processing: "Working",
  done: "Done",
  failed: "Failed",
  cancelled: "Cancelled",
};

// Stages by their names in progress events; a stage not named here shows as it is.
const STAGES = {
  transcribe: "transcribe speech",
};

/** @param {string} stage */
function stageWords(stage) {
  return STAGES[stage] || stage;
}

/** @type {AbortController | null} */
let following = null;
let jobId = "";

export function setupJobPanel() {
  $("cancel").addEventListener("click", cancel);
  $("another").addEventListener("click", () => {
    following?.abort();
    $("job-panel").hidden = true;
    $("submit").focus();
  });
  $("copy-link").addEventListener("click", copyLink);
}

/** Show job `id` and follow it until it ends. */
export function showJob(id) {
  following?.abort();
  following = new AbortController();
  jobId = id;
  const panel = $("job-panel");
  panel.hidden = false;
  panel.dataset.jobId = id;
  panel.dataset.status = "queued";
  $("stages").replaceChildren();
  $("result").hidden = true;
  $("job-subtitles").hidden = true;
  $("download-srt").hidden = true;
  $("another").hidden = true;
  $("cancel").hidden = false;
  say($("job-error"), "");
  /** @type {HTMLProgressElement} */ ($("job-progress")).value = 0;
  $("job-status").textContent = WORDS.queued;
  panel.scrollIntoView({ block: "nearest" });
  const signal = following.signal;
  follow(id, (job, via) => id === jobId && update(job, via), signal).catch((error) => {
    if (!signal.aborted) say($("job-error"), error.full || String(error), "error");
  });
}

function update(job, via) {
  const panel = $("job-panel");
  panel.dataset.status = job.status;
  panel.dataset.via = via;
  /** @type {HTMLProgressElement} */ ($("job-progress")).value = job.progress;
  const stage = job.stage && job.status === "processing" ? `: ${stageWords(job.stage)}` : "";
  const pct = job.status === "processing" ? ` (${job.progress}%)` : "";
  $("job-status").textContent = `${WORDS[job.status] || job.status}${stage}${pct}`;
  if (job.stage) markStage(job.stage);
  const ended = TERMINAL.has(job.status);
  $("cancel").hidden = ended;
  $("another").hidden = !ended;
  if (job.status === "failed" && job.error) say($("job-error"), job.error.message, "error");
  if (job.status === "done") {
    showSubtitles(job.subtitles);
    showResult(job.id);
  }
}

/** Where the subtitles came from: "Subtitles: from speech (tiny.en, en) · 3 cues", and why
 * they are empty when they are. */
function showSubtitles(made) {
  const box = $("job-subtitles");
  box.hidden = !made;
  if (!made) return;
  box.dataset.source = made.source;
  box.dataset.cues = String(made.cues);
  const note = subtitlesNote(made);
  fill(
    box,
    h("p", {}, h("strong", { text: "Subtitles:" }), ` ${subtitlesSummary(made)}`),
    note ? h("p", { class: "hint", id: "job-subtitles-note", text: note }) : null,
  );
}

function markStage(stage) {
  const list = $("stages");
  for (const item of list.children) item.classList.remove("current");
  let item = list.querySelector(`[data-stage="${CSS.escape(stage)}"]`);
  if (!item) {
    item = h("li", { "data-stage": stage, text: stageWords(stage) });
    list.append(item);
  }
  item.classList.add("current");
}

async function cancel() {
  try {
    const job = await api(`/api/jobs/${jobId}/cancel`, { method: "POST" });
    following?.abort();
    update(job, "answer"); // the cancel's own answer: the stream is closed by now
  } catch (error) {
    say($("job-error"), error.full || String(error), "error");
  }
}

async function showResult(id) {
  try {
    const result = await api(`/api/jobs/${id}/result`);
    const url = result.video.url;
    /** @type {HTMLVideoElement} */ ($("result-player")).src = url;
    const link = /** @type {HTMLAnchorElement} */ ($("download"));
    link.href = url;
    link.download = new URL(url, location.href).pathname.split("/").pop() || "clip.mp4";
    /** @type {HTMLInputElement} */ ($("result-link")).value = url;
    $("link-expiry").textContent = `The link expires ${when(result.video.expiresAt)}.`;
    const srt = /** @type {HTMLAnchorElement} */ ($("download-srt"));
    srt.hidden = !result.subtitles;
    if (result.subtitles) {
      srt.href = result.subtitles.url;
      srt.download = new URL(result.subtitles.url, location.href).pathname.split("/").pop() || "clip.srt";
    }
    $("result").hidden = false;
  } catch (error) {
    say($("job-error"), error.full || String(error), "error");
  }
}

async function copyLink() {
  const field = /** @type {HTMLInputElement} */ ($("result-link"));
  try {
    await navigator.clipboard.writeText(field.value);
    $("copied").textContent = "Copied.";
  } catch {
    // No clipboard permission: select it, so Ctrl+C copies it.
    field.select();
    $("copied").textContent = "Selected: press Ctrl+C to copy.";
  }
}
