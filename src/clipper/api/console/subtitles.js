// Where a done job's subtitles came from (the job's `subtitles`: source, cues, language,
// model, note), in words: the job panel and the queue's job page both say it.

/**
 * @typedef {{source: string, cues: number, language?: string | null, model?: string | null, note?: string | null}} SubtitlesMade
 */

/** "3 cues", "1 cue", "no cues". */
function cues(count) {
  if (!count) return "no cues";
  return `${count} cue${count === 1 ? "" : "s"}`;
}

/**
 * "from speech (tiny.en, en) · 3 cues", "from the uploaded .srt · 12 cues", "from the
 * source's track (eng) · 5 cues"; an unknown source by its name.
 * @param {SubtitlesMade} made
 */
export function subtitlesSummary(made) {
  const about = [made.model, made.language].filter(Boolean).join(", ");
  const from = {
    speech: "from speech",
    sidecar: "from the uploaded .srt",
    track: "from the source's track",
  }[made.source] || `from ${made.source}`;
  return `${from}${about ? ` (${about})` : ""} · ${cues(made.cues)}`;
}

/**
 * The note of empty subtitles as a sentence ("No speech was heard in the clip: …."), or "".
 * @param {SubtitlesMade} made
 */
export function subtitlesNote(made) {
  const note = (made.note || "").trim();
  if (!note) return "";
  return note[0].toUpperCase() + note.slice(1) + (/[.!?]$/.test(note) ? "" : ".");
}
