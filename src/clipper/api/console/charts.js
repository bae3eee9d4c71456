// Two small line charts of the last hour, drawn as SVG by hand (no chart library): one
// value per minute, an empty minute is zero.

const NS = "http://www.w3.org/2000/svg";
const W = 320;
const H = 120;
const PAD = 24;

function el(tag, attrs, text) {
  const node = document.createElementNS(NS, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

/**
 * Draw `series` (each a label, a CSS class and 60 values, oldest first) into `svg`.
 * @param {SVGSVGElement} svg
 * @param {Array<{label: string, cls: string, values: number[]}>} series
 * @param {string} unit
 */
export function lineChart(svg, series, unit) {
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.replaceChildren();
  const top = Math.max(1, ...series.flatMap((s) => s.values));
  const n = Math.max(1, ...series.map((s) => s.values.length - 1));
  const x = (i) => PAD + ((W - PAD - 4) * i) / n;
  const y = (v) => H - PAD + 4 - ((H - PAD - 8) * v) / top;
  svg.append(
    el("line", { x1: PAD, y1: y(0), x2: W - 4, y2: y(0), class: "axis" }),
    el("text", { x: PAD - 4, y: y(top) + 4, class: "tick", "text-anchor": "end" }, fmt(top)),
    el("text", { x: PAD - 4, y: y(0), class: "tick", "text-anchor": "end" }, "0"),
    el("text", { x: PAD, y: H - 4, class: "tick" }, "−60 min"),
    el("text", { x: W - 4, y: H - 4, class: "tick", "text-anchor": "end" }, `now (${unit})`),
  );
  series.forEach((s, index) => {
    const points = s.values.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
    svg.append(el("polyline", { points, class: `line ${s.cls}` }));
    svg.append(el("text", { x: PAD + 6 + index * 90, y: 12, class: `legend ${s.cls}` }, s.label));
  });
  const title = el("title", {}, series.map((s) => `${s.label}: ${fmt(s.values.at(-1) || 0)} in the last minute`).join("; "));
  svg.prepend(title);
}

function fmt(value) {
  return value >= 100 ? String(Math.round(value)) : String(Math.round(value * 10) / 10);
}

/**
 * The overview's minutes as 60 values per field, oldest first, summed over the queues.
 * @param {Array<any>} minutes
 * @param {string[]} fields
 * @param {"sum" | "avg"} how
 */
export function perMinute(minutes, fields, how = "sum") {
  const now = Math.floor(Date.now() / 60000);
  const out = Object.fromEntries(fields.map((f) => [f, new Array(60).fill(0)]));
  const counts = new Array(60).fill(0);
  for (const row of minutes) {
    const slot = 59 - (now - Math.floor(new Date(row.minute).getTime() / 60000));
    if (slot < 0 || slot > 59) continue;
    counts[slot] += 1;
    for (const f of fields) out[f][slot] += Number(row[f]) || 0;
  }
  if (how === "avg") {
    for (const f of fields) out[f] = out[f].map((v, i) => (counts[i] ? v / counts[i] : 0));
  }
  return out;
}
