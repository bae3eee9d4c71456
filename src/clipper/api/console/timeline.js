// The source player's timeline: a playhead and two draggable handles (in and out) over the
// video's length. Pointer events cover mouse, pen and touch alike; the handles are sliders
// for the keyboard too (arrows move them a frame, Shift a second).

import { $ } from "./dom.js";
import { format } from "./timecode.js";

export class Timeline {
  /**
   * @param {HTMLVideoElement} video
   * @param {(which: "in" | "out", seconds: number) => void} onMove a handle was moved
   */
  constructor(video, onMove) {
    this.video = video;
    this.onMove = onMove;
    this.duration = 0;
    this.inAt = 0;
    this.outAt = 0;
    this.frame = 1 / 25;
    this.box = $("timeline");
    this.handles = { in: $("handle-in"), out: $("handle-out") };
    this.box.addEventListener("pointerdown", (event) => this.#seekTo(event));
    for (const [which, handle] of Object.entries(this.handles)) {
      handle.addEventListener("pointerdown", (event) => this.#drag(event, which));
      handle.addEventListener("keydown", (event) => this.#nudge(event, which));
    }
  }

  /** Seconds at a pointer's x. */
  #at(event) {
    const rect = this.box.getBoundingClientRect();
    const share = Math.min(1, Math.max(0, (event.clientX - rect.left) / rect.width));
    return share * this.duration;
  }

  #seekTo(event) {
    if (event.target !== this.box && !event.target.matches(".track, .range, .playhead")) return;
    if (this.duration) this.video.currentTime = this.#at(event);
  }

  #drag(event, which) {
    event.preventDefault();
    event.stopPropagation();
    const handle = this.handles[which];
    handle.focus();
    handle.setPointerCapture(event.pointerId);
    const move = (e) => this.onMove(which, this.#at(e));
    const stop = () => {
      handle.removeEventListener("pointermove", move);
      handle.removeEventListener("pointerup", stop);
      handle.removeEventListener("pointercancel", stop);
    };
    handle.addEventListener("pointermove", move);
    handle.addEventListener("pointerup", stop);
    handle.addEventListener("pointercancel", stop);
  }

  #nudge(event, which) {
    const step = event.shiftKey ? 1 : this.frame;
    const now = which === "in" ? this.inAt : this.outAt;
    const to = { ArrowLeft: now - step, ArrowRight: now + step, Home: 0, End: this.duration }[
      event.key
    ];
    if (to === undefined) return;
    event.preventDefault();
    event.stopPropagation(); // not the page's own arrow keys (they move the playhead)
    this.onMove(which, Math.min(this.duration, Math.max(0, to)));
  }

  /** Draw the handles, the range between them and the playhead. */
  render(inAt, outAt) {
    this.inAt = inAt;
    this.outAt = outAt;
    const pct = (t) => (this.duration ? (100 * Math.min(t, this.duration)) / this.duration : 0);
    this.handles.in.style.left = `${pct(inAt)}%`;
    this.handles.out.style.left = `${pct(outAt)}%`;
    const range = $("range");
    range.style.left = `${pct(Math.min(inAt, outAt))}%`;
    range.style.width = `${Math.abs(pct(outAt) - pct(inAt))}%`;
    for (const [which, at] of [["in", inAt], ["out", outAt]]) {
      const handle = this.handles[which];
      handle.setAttribute("aria-valuemin", "0");
      handle.setAttribute("aria-valuemax", String(this.duration));
      handle.setAttribute("aria-valuenow", at.toFixed(3));
      handle.setAttribute("aria-valuetext", format(at));
    }
    this.playhead();
  }

  playhead() {
    const at = this.duration ? (100 * this.video.currentTime) / this.duration : 0;
    $("playhead").style.left = `${Math.min(100, at)}%`;
  }
}
