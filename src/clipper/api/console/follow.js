// Follow one job until it ends: the server pushes each change over GET /api/jobs/{id}/stream;
// only while that route answers 404 (a server without it) does the page poll, once a second.

import { api } from "./api.js";
import { readStream } from "./sse.js";

export const TERMINAL = new Set(["done", "failed", "cancelled"]);

/**
 * The stage a job is in: the job's own `stage` when the API sends it, else the last
 * progress event's.
 * @param {any} job
 */
async function withStage(job) {
  if (job.stage !== undefined || TERMINAL.has(job.status) || job.status === "queued") return job;
  try {
    const events = await api(`/api/jobs/${job.id}/events`);
    const progress = events.filter((e) => e.type === "progress" && e.payload.stage).pop();
    return { ...job, stage: progress ? progress.payload.stage : null };
  } catch {
    return job; // the stage is a nicety; the status and progress still show
  }
}

/**
 * @param {string} id
 * @param {(job: any, via: "stream" | "polling") => void} onJob each fresh state
 * @param {AbortSignal} signal stops following
 */
export async function follow(id, onJob, signal) {
  let lastEventId = null;
  let failures = 0;
  while (!signal.aborted) {
    let ended = null;
    // One update at a time, in the order they came (the stage lookup is asynchronous).
    let chain = Promise.resolve();
    try {
      lastEventId = await readStream(
        `/api/jobs/${id}/stream`,
        (event) => {
          if (event.event !== "job") return;
          const job = JSON.parse(event.data);
          if (TERMINAL.has(job.status)) ended = job;
          chain = chain.then(async () => onJob(await withStage(job), "stream"));
        },
        { signal, lastEventId },
      );
      await chain;
      failures = 0;
    } catch (error) {
      if (signal.aborted) return;
      // No stream route on this server (or not yet): poll, and try the stream again now
      // and then, so a server that gains it is followed live.
      if (error.missing) {
        if (await poll(id, onJob, signal, 10)) return;
        continue;
      }
      if (error.status && error.status !== 503) throw error; // 401, 410: nothing to retry
      failures += 1;
    }
    if (ended) return;
    // The stream ended early (a restart, a proxy's timeout): resume after a pause.
    await pause(Math.min(10000, 500 * 2 ** failures), signal);
  }
}

/** Poll once a second, `times` times at most; true once the job has ended. */
async function poll(id, onJob, signal, times) {
  for (let i = 0; i < times && !signal.aborted; i += 1) {
    const job = await withStage(await api(`/api/jobs/${id}`, { signal }));
    onJob(job, "polling");
    if (TERMINAL.has(job.status)) return true;
    await pause(1000, signal);
  }
  return false;
}

function pause(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve();
    });
  });
}
