// Timecodes as the API takes them: HH:MM:SS or HH:MM:SS.mmm, minutes and seconds below 60.

const PATTERN = /^(\d{1,2}):([0-5]\d):([0-5]\d)(?:\.(\d{1,3}))?$/;

/** Seconds as HH:MM:SS.mmm (rounded to the millisecond). */
export function format(seconds) {
  const ms = Math.max(0, Math.round(seconds * 1000));
  const h = Math.floor(ms / 3600000);
  const m = Math.floor((ms % 3600000) / 60000);
  const s = Math.floor((ms % 60000) / 1000);
  const pad = (n, w = 2) => String(n).padStart(w, "0");
  return `${pad(h)}:${pad(m)}:${pad(s)}.${pad(ms % 1000, 3)}`;
}

/** HH:MM:SS[.mmm] as seconds, or null when it is not one. */
export function parse(text) {
  const match = PATTERN.exec(text.trim());
  if (!match) return null;
  const [, h, m, s, frac = "0"] = match;
  return Number(h) * 3600 + Number(m) * 60 + Number(s) + Number(frac.padEnd(3, "0")) / 1000;
}

/** A length for people: "3.0 s", "2 min 5 s". */
export function length(seconds) {
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const m = Math.floor(seconds / 60);
  return `${m} min ${Math.round(seconds - m * 60)} s`;
}

/** A date as local time, and how far from now ("in 14 min", "3 min ago"). */
export function when(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  const minutes = Math.round((date.getTime() - Date.now()) / 60000);
  const relative =
    minutes === 0 ? "now" : minutes > 0 ? `in ${minutes} min` : `${-minutes} min ago`;
  return `${date.toLocaleString()} (${relative})`;
}

/** An age in seconds for people: "12 s", "4 min", "2 h". */
export function age(seconds) {
  if (seconds == null) return "—";
  if (seconds < 90) return `${Math.round(seconds)} s`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}
