// Server-Sent Events over fetch(): EventSource cannot send the X-API-Key header, and a key
// must never go in a URL. A small parser of the text/event-stream format (WHATWG HTML,
// "Server-sent events": fields event, data, id; comments start with a colon).

import { authHeaders, failed } from "./api.js";

/**
 * Parse a stream of text chunks into events.
 * @returns {(chunk: string) => Array<{event: string, data: string, id: string | null}>}
 */
export function parser() {
  let buffer = "";
  let event = "";
  let data = [];
  let id = null;
  return (chunk) => {
    buffer += chunk;
    // A CR at the very end may be the first half of a CRLF: wait for the next chunk.
    const held = buffer.endsWith("\r") ? "\r" : "";
    const lines = (held ? buffer.slice(0, -1) : buffer).split(/\r\n|\r|\n/);
    buffer = (lines.pop() ?? "") + held; // an incomplete last line waits for the next chunk
    const out = [];
    for (const line of lines) {
      if (line === "") {
        if (data.length) out.push({ event: event || "message", data: data.join("\n"), id });
        event = "";
        data = [];
        continue;
      }
      if (line.startsWith(":")) continue; // keepalive comments
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "event") event = value;
      else if (field === "data") data.push(value);
      else if (field === "id") id = value;
    }
    return out;
  };
}

/**
 * Read an SSE stream until it ends or `signal` aborts. Throws ApiError when the route
 * answers an error (404: the server has no such stream, the caller falls back to polling).
 * @param {string} path
 * @param {(event: {event: string, data: string, id: string | null}) => void} onEvent
 * @param {{signal?: AbortSignal, lastEventId?: string | null}} [options]
 * @returns {Promise<string | null>} the last event id seen (to resume with Last-Event-ID)
 */
export async function readStream(path, onEvent, options = {}) {
  const headers = authHeaders({ Accept: "text/event-stream" });
  if (options.lastEventId) headers["Last-Event-ID"] = options.lastEventId;
  const response = await fetch(path, { headers, signal: options.signal, cache: "no-store" });
  if (!response.ok) throw failed(response.status, await response.text());
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  const parse = parser();
  let last = options.lastEventId || null;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return last;
    for (const event of parse(value)) {
      if (event.id !== null) last = event.id;
      onEvent(event);
    }
  }
}
