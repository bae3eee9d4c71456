// The console's entry point: reads the server's config, routes by the URL's hash, asks for
// an API key when (and only when) the API answers 401, and says when the database is down.

import { showOverview, stopOverview } from "./admin-overview.js";
import { setupJobsSearch, showJobPage, showJobsSearch } from "./admin-jobs.js";
import { showDeadLetters } from "./admin-dlq.js";
import { api, getKey, onTrouble, setKey } from "./api.js";
import { setupClipPage } from "./clip.js";
import { setupClipsPage, showClipsPage } from "./clips.js";
import { $, say } from "./dom.js";
import { setupJobPanel } from "./job-panel.js";

const VIEWS = ["clip", "clips", "admin"];
const TABS = ["overview", "jobs", "job", "dlq"];

/** The view and admin tab the location names. */
function where() {
  const hash = location.hash.replace(/^#\/?/, "");
  const parts = hash.split("/").filter(Boolean);
  if (!parts.length) return location.pathname.startsWith("/console") ? { view: "admin", tab: "overview" } : { view: "clip" };
  if (parts[0] === "clips") return { view: "clips" };
  if (parts[0] === "admin") {
    if (parts[1] === "jobs" && parts[2]) return { view: "admin", tab: "job", id: parts[2] };
    if (parts[1] === "jobs") return { view: "admin", tab: "jobs" };
    if (parts[1] === "dlq") return { view: "admin", tab: "dlq" };
    return { view: "admin", tab: "overview" };
  }
  return { view: "clip" };
}

function route() {
  const place = where();
  for (const view of VIEWS) $(`view-${view}`).hidden = view !== place.view;
  for (const link of document.querySelectorAll("[data-nav]")) {
    if (link.getAttribute("data-nav") === place.view) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  document.title = { clip: "Make a clip", clips: "My clips", admin: "Queue" }[place.view] + " · Clipper Console";
  if (place.view !== "admin" || place.tab !== "overview") stopOverview();
  if (place.view === "clips") showClipsPage();
  if (place.view === "admin") {
    say($("admin-status"), "");
    for (const tab of TABS) $(`tab-${tab}`).hidden = tab !== place.tab;
    for (const link of document.querySelectorAll("[data-tab]")) {
      const current = link.getAttribute("data-tab") === (place.tab === "job" ? "jobs" : place.tab);
      if (current) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
    if (place.tab === "overview") showOverview();
    if (place.tab === "jobs") showJobsSearch();
    if (place.tab === "job") showJobPage(place.id);
    if (place.tab === "dlq") showDeadLetters();
  }
}

/** The key prompt: on a 401, once at a time; "rejected" when the key sent was refused. */
function askForKey(rejected) {
  const dialog = /** @type {HTMLDialogElement} */ ($("key-dialog"));
  $("key-rejected").hidden = !rejected;
  $("key-reason").textContent = rejected ? "Enter another key." : "This server needs an API key.";
  const button = $("key-button");
  button.hidden = false;
  button.textContent = rejected ? "Key rejected" : getKey() ? "API key" : "Enter API key";
  button.dataset.state = rejected ? "rejected" : "";
  if (dialog.open) return;
  /** @type {HTMLInputElement} */ ($("key-input")).value = "";
  dialog.showModal();
}

function setupKeyDialog() {
  const dialog = /** @type {HTMLDialogElement} */ ($("key-dialog"));
  dialog.addEventListener("close", () => {
    if (dialog.returnValue !== "ok") return;
    const key = /** @type {HTMLInputElement} */ ($("key-input")).value.trim();
    setKey(key);
    const button = $("key-button");
    button.textContent = "API key";
    button.dataset.state = "";
    route(); // the view asks again, with the key
  });
  $("key-button").addEventListener("click", () => askForKey(false));
}

/** While the server is not ready, look again every few seconds: the banner follows what is
 * wrong (a check can recover or fail later than another) and goes once all is well. */
let readinessTimer = 0;
const READINESS_RECHECK_MS = 3000;

async function showReadiness() {
  const banner = $("banner");
  clearTimeout(readinessTimer);
  try {
    const response = await fetch("/readyz", { cache: "no-store" });
    const body = await response.json();
    if (response.ok) {
      banner.hidden = true;
      return;
    }
    const failing = Object.entries(body.checks || {})
      .filter(([, value]) => value !== "ok")
      .map(([name, value]) => `${name}: ${value}`);
    banner.textContent = `The server is not ready (${failing.join("; ") || "unavailable"}). Try again in a moment.`;
  } catch {
    banner.textContent = "The server cannot be reached.";
  }
  banner.hidden = false;
  readinessTimer = setTimeout(showReadiness, READINESS_RECHECK_MS);
}

async function start() {
  let config = { urlSources: false, maxUploadMb: 500, clipMaxDurationSec: 120, apiKeys: false };
  try {
    config = await api("/api/console/config");
  } catch {
    // An older server: keep the defaults, the API still refuses what it must.
  }
  $("key-button").hidden = !config.apiKeys;
  if (config.apiKeys) $("key-button").textContent = getKey() ? "API key" : "Enter API key";
  onTrouble((status, hadKey) => (status === 401 ? askForKey(hadKey) : showReadiness()));
  setupKeyDialog();
  setupClipPage(config);
  setupJobPanel();
  setupClipsPage();
  setupJobsSearch();
  window.addEventListener("hashchange", () => {
    route();
    $("main").focus({ preventScroll: true });
  });
  route();
  showReadiness();
  document.body.dataset.ready = "true"; // for the browser tests: the modules ran
}

start();
