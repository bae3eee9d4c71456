// The make-a-clip page: a source (a file, uploaded as soon as it is chosen, or a URL), the
// range (player, timeline, keys, timecodes), the options, and the submit. The job that
// follows is shown by job-panel.js.

import { api } from "./api.js";
import { $, h, fill, say } from "./dom.js";
import { showJob } from "./job-panel.js";
import { Timeline } from "./timeline.js";
import { format, length, parse } from "./timecode.js";
import { upload } from "./upload.js";

/** @type {{urlSources: boolean, maxUploadMb: number, clipMaxDurationSec: number, apiKeys: boolean}} */
let config = { urlSources: false, maxUploadMb: 500, clipMaxDurationSec: 120, apiKeys: false };

const state = {
  /** @type {null | {kind: "upload", pending: Promise<any>, uploadKey?: string} | {kind: "url", url: string}} */
  source: null,
  inAt: 0,
  outAt: 0,
  objectUrl: "",
  /** @type {Promise<string> | null} the .srt sidecar's upload key */
  subtitles: null,
  /** @type {null | (() => void)} aborts the upload in flight */
  abortUpload: null,
};

/** @type {Timeline} */
let timeline;

// The form's fields by the API's names for them: a refusal naming one marks it invalid.
const FIELDS = { subtitleLang: "subtitle-lang", subtitlesKey: "srt-input", priority: "priority" };

export function setupClipPage(serverConfig) {
  config = serverConfig;
  const player = /** @type {HTMLVideoElement} */ ($("player"));
  timeline = new Timeline(player, (which, at) => (which === "in" ? setIn(at) : setOut(at)));
  $("upload-limit").textContent = `Up to ${config.maxUploadMb} MB; clips up to ${length(config.clipMaxDurationSec)}.`;
  $("url-form").hidden = !config.urlSources;

  const input = /** @type {HTMLInputElement} */ ($("file-input"));
  $("choose").addEventListener("click", () => input.click());
  input.addEventListener("change", () => input.files?.[0] && useFile(input.files[0]));
  const drop = $("drop");
  drop.addEventListener("dragover", (event) => {
    event.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    const file = event.dataTransfer?.files?.[0];
    if (file) useFile(file);
  });
  $("url-form").addEventListener("submit", (event) => {
    event.preventDefault();
    useUrl(/** @type {HTMLInputElement} */ ($("url-input")).value.trim());
  });

  player.addEventListener("loadedmetadata", () => setDuration(player.duration));
  player.addEventListener("timeupdate", showPlayhead);
  player.addEventListener("seeked", showPlayhead);
  player.addEventListener("play", () => ($("play").textContent = "Pause"));
  player.addEventListener("pause", () => ($("play").textContent = "Play"));
  player.addEventListener("error", () =>
    say($("upload-error"), "This browser cannot play this file: set the range by typing timecodes.", "info"),
  );
  $("play").addEventListener("click", togglePlay);
  $("set-in").addEventListener("click", () => setIn(player.currentTime));
  $("set-out").addEventListener("click", () => setOut(player.currentTime));
  document.addEventListener("keydown", onKey);

  for (const [id, set] of [["in-input", setIn], ["out-input", setOut]]) {
    $(id).addEventListener("change", () => {
      const field = /** @type {HTMLInputElement} */ ($(id));
      const seconds = parse(field.value);
      if (seconds === null) {
        field.setAttribute("aria-invalid", "true");
        say($("range-error"), `${id === "in-input" ? "In" : "Out"}: write it as HH:MM:SS.mmm.`, "error");
        return;
      }
      field.removeAttribute("aria-invalid");
      set(seconds);
    });
  }

  const withSubtitles = /** @type {HTMLInputElement} */ ($("with-subtitles"));
  withSubtitles.addEventListener("change", () => {
    for (const id of ["subtitle-lang", "srt-input", "burn"]) {
      /** @type {HTMLInputElement} */ ($(id)).disabled = !withSubtitles.checked;
    }
  });
  $("srt-input").addEventListener("change", useSrt);
  for (const id of Object.values(FIELDS)) {
    $(id).addEventListener("input", () => $(id).removeAttribute("aria-invalid"));
  }
  $("clip-form").addEventListener("submit", (event) => {
    event.preventDefault();
    submit();
  });
}

/** A local file: play it from memory (an object URL) while it uploads. */
function useFile(file) {
  state.abortUpload?.();
  const player = /** @type {HTMLVideoElement} */ ($("player"));
  if (state.objectUrl) URL.revokeObjectURL(state.objectUrl);
  state.objectUrl = URL.createObjectURL(file);
  player.src = state.objectUrl;
  $("player-box").hidden = false;
  $("url-source").hidden = true;
  $("editor").hidden = false;
  say($("upload-error"), "");
  say($("submit-error"), "");

  const bar = /** @type {HTMLProgressElement} */ ($("upload-progress"));
  $("upload-status").hidden = false;
  bar.value = 0;
  $("upload-text").textContent = `Uploading ${file.name}…`;
  const { done, abort } = upload(file, (sent, total) => {
    bar.value = Math.round((100 * sent) / total);
    $("upload-text").textContent = `Uploading ${file.name}: ${bar.value}%`;
  });
  state.abortUpload = abort;
  const source = { kind: "upload", pending: done };
  state.source = source;
  done.then(
    (answer) => {
      source.uploadKey = answer.uploadKey;
      bar.value = 100;
      $("upload-text").textContent = `Uploaded ${file.name}.`;
      $("upload-status").dataset.state = "done";
      fill($("languages"), ...(answer.subtitleLanguages || []).map((code) => h("option", { value: code })));
      // A file this browser cannot play still has a length: the upload's probe knows it.
      if (!timeline.duration && answer.durationMs) setDuration(answer.durationMs / 1000);
    },
    (error) => {
      if (error.name === "AbortError") return;
      // Nothing to clip without the upload: say why, in the API's words, and start over.
      $("upload-status").dataset.state = "failed";
      $("upload-status").hidden = true;
      $("editor").hidden = true;
      state.source = null;
      say($("upload-error"), `The upload of ${file.name} failed: ${error.full || error}`, "error");
      $("choose").focus();
    },
  );
}

function useUrl(url) {
  if (!url) return;
  state.abortUpload?.();
  state.source = { kind: "url", url };
  $("editor").hidden = false;
  $("player-box").hidden = true;
  const note = $("url-source");
  note.hidden = false;
  note.textContent = `From ${url}: type the range (the server fetches the video when the clip is made).`;
  setDuration(0);
}

function setDuration(seconds) {
  const duration = Number.isFinite(seconds) ? seconds : 0;
  timeline.duration = duration;
  $("duration").textContent = duration ? format(duration) : "—";
  state.inAt = 0;
  state.outAt = Math.min(duration, config.clipMaxDurationSec);
  showRange();
}

function clamp(seconds) {
  const top = timeline.duration || Number.MAX_SAFE_INTEGER;
  return Math.min(top, Math.max(0, Math.round(seconds * 1000) / 1000));
}

function setIn(seconds) {
  state.inAt = clamp(seconds);
  showRange();
}

function setOut(seconds) {
  state.outAt = clamp(seconds);
  showRange();
}

/** The refusal the API would give this range, or "". */
function rangeProblem() {
  const clip = state.outAt - state.inAt;
  if (clip <= 0) return "The out point must be after the in point.";
  if (clip > config.clipMaxDurationSec + 1e-9) {
    return `A clip may be at most ${length(config.clipMaxDurationSec)} long; this one is ${length(clip)}.`;
  }
  return "";
}

function showRange() {
  /** @type {HTMLInputElement} */ ($("in-input")).value = format(state.inAt);
  /** @type {HTMLInputElement} */ ($("out-input")).value = format(state.outAt);
  $("clip-length").textContent = length(Math.max(0, state.outAt - state.inAt));
  const problem = rangeProblem();
  say($("range-error"), problem, "error");
  for (const id of ["in-input", "out-input"]) {
    if (problem) $(id).setAttribute("aria-invalid", "true");
    else $(id).removeAttribute("aria-invalid");
  }
  timeline.render(state.inAt, state.outAt);
}

function showPlayhead() {
  const player = /** @type {HTMLVideoElement} */ ($("player"));
  $("now").textContent = format(player.currentTime);
  timeline.playhead();
}

function togglePlay() {
  const player = /** @type {HTMLVideoElement} */ ($("player"));
  if (player.paused) player.play().catch(() => {});
  else player.pause();
}

/** Move the playhead by `seconds` (paused: a frame step shows exactly that frame). */
function step(seconds) {
  const player = /** @type {HTMLVideoElement} */ ($("player"));
  player.pause();
  player.currentTime = clamp(player.currentTime + seconds);
  showPlayhead();
}

/** The editor's keys, wherever focus is except in a text field (where they are typing). */
function onKey(event) {
  if ($("editor").hidden || $("player-box").hidden || document.querySelector("dialog[open]")) return;
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  const target = /** @type {HTMLElement} */ (event.target);
  if (target.closest("input, select, textarea, [contenteditable]")) return;
  const player = /** @type {HTMLVideoElement} */ ($("player"));
  const key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
  if (key === "i") setIn(player.currentTime);
  else if (key === "o") setOut(player.currentTime);
  else if (key === "ArrowLeft") step(event.shiftKey ? -1 : -timeline.frame);
  else if (key === "ArrowRight") step(event.shiftKey ? 1 : timeline.frame);
  // Space on a button presses it, as everywhere; elsewhere it plays and pauses.
  else if (key === " " && !target.closest("button, a, [role=slider]")) togglePlay();
  else return;
  event.preventDefault();
}

function useSrt() {
  const file = /** @type {HTMLInputElement} */ ($("srt-input")).files?.[0];
  const status = $("srt-status");
  if (!file) {
    state.subtitles = null;
    status.textContent = "";
    return;
  }
  status.textContent = `Uploading ${file.name}…`;
  state.subtitles = upload(file, () => {}).done.then(
    (answer) => {
      status.textContent = `${file.name} uploaded.`;
      return answer.uploadKey;
    },
    (error) => {
      status.textContent = "";
      state.subtitles = null;
      say($("submit-error"), `Subtitles file: ${error.full || error}`, "error");
      throw error;
    },
  );
}

async function submit() {
  const error = $("submit-error");
  say(error, "");
  for (const id of Object.values(FIELDS)) $(id).removeAttribute("aria-invalid");
  const problem = rangeProblem();
  if (problem) {
    say(error, problem, "error");
    return;
  }
  const source = state.source;
  if (!source) {
    say(error, "Choose a file (or paste a URL) first.", "error");
    return;
  }
  const button = /** @type {HTMLButtonElement} */ ($("submit"));
  button.disabled = true;
  try {
    /** @type {Record<string, unknown>} */
    const body = {
      start: format(state.inAt),
      end: format(state.outAt),
      priority: /** @type {HTMLSelectElement} */ ($("priority")).value,
    };
    if (source.kind === "url") {
      body.sourceType = "youtube";
      body.youtubeUrl = source.url;
    } else {
      if (!source.uploadKey) say(error, "Waiting for the upload to finish…", "info");
      body.sourceType = "upload";
      body.uploadKey = source.uploadKey || (await source.pending).uploadKey;
    }
    if (/** @type {HTMLInputElement} */ ($("with-subtitles")).checked) {
      body.withSubtitles = true;
      body.subtitleLang = /** @type {HTMLInputElement} */ ($("subtitle-lang")).value.trim() || "auto";
      if (state.subtitles) body.subtitlesKey = await state.subtitles;
      body.burnSubtitles = /** @type {HTMLInputElement} */ ($("burn")).checked;
    }
    const job = await api("/api/jobs", { method: "POST", body });
    say(error, "");
    showJob(job.id);
  } catch (failure) {
    say(error, failure.full || String(failure), "error");
    for (const detail of failure.details || []) {
      const id = FIELDS[detail.field];
      if (id) $(id).setAttribute("aria-invalid", "true");
    }
  } finally {
    button.disabled = false;
  }
}
