// Every call to the API goes through here: it adds the key (X-API-Key, never in a URL),
// turns the error envelope into an ApiError, and tells the page about 401s and 503s so it
// can ask for a key or say the database is down, once, in one place.

const KEY_STORE = "clipper.apiKey";

/** An answer that was not 2xx, with the API's own words. */
export class ApiError extends Error {
  /**
   * @param {number} status
   * @param {{code?: string, message?: string, details?: Array<{field?: string, message?: string}>}} error
   */
  constructor(status, error) {
    super(error.message || `HTTP ${status}`);
    this.status = status;
    this.code = error.code || "HTTP_" + status;
    this.details = Array.isArray(error.details) ? error.details : [];
  }

  /** The message, with each detail that adds something (field: message). */
  get full() {
    const extra = this.details
      .map((d) => (d.field ? `${d.field}: ${d.message}` : d.message))
      .filter((text) => text && text !== this.message);
    return [this.message, ...extra].join(" — ");
  }

  /** A route this server does not have (yet): the page shows "not available". */
  get missing() {
    return this.status === 404 && this.code === "NOT_FOUND";
  }
}

/** @type {Set<(status: number, hadKey: boolean) => void>} */
const listeners = new Set();

/** Called on every 401 and 503 (the page shows the key prompt or the outage banner). */
export function onTrouble(listener) {
  listeners.add(listener);
}

export function getKey() {
  return sessionStorage.getItem(KEY_STORE) || "";
}

export function setKey(key) {
  if (key) sessionStorage.setItem(KEY_STORE, key);
  else sessionStorage.removeItem(KEY_STORE);
}

/** Headers for a request: the key, when there is one. */
export function authHeaders(extra = {}) {
  const key = getKey();
  return key ? { ...extra, "X-API-Key": key } : { ...extra };
}

function tell(status) {
  for (const listener of listeners) listener(status, Boolean(getKey()));
}

/**
 * Read an error answer's envelope (or make one from the status when it is not JSON).
 * @param {Response | XMLHttpRequest} answer
 * @param {string} text
 */
export function errorOf(status, text) {
  try {
    const body = JSON.parse(text);
    if (body && body.error) return new ApiError(status, body.error);
  } catch {
    // Not JSON (a proxy's page): fall through to the status alone.
  }
  return new ApiError(status, { message: `The server answered ${status}.` });
}

/** Note a non-2xx status for the listeners, then make its ApiError. */
export function failed(status, text) {
  if (status === 401 || status === 503) tell(status);
  return errorOf(status, text);
}

/**
 * Call the API and answer its JSON (null for an empty body); throws ApiError otherwise.
 * @param {string} path
 * @param {{method?: string, body?: unknown, signal?: AbortSignal}} [options]
 */
export async function api(path, options = {}) {
  const init = { method: options.method || "GET", headers: authHeaders(), signal: options.signal };
  if (options.body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(options.body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, { code: "OFFLINE", message: "The server cannot be reached." });
  }
  const text = await response.text();
  if (!response.ok) throw failed(response.status, text);
  return text ? JSON.parse(text) : null;
}

/** A query string of the values that are set. */
export function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") search.set(name, String(value));
  }
  const text = search.toString();
  return text ? "?" + text : "";
}
