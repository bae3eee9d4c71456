// Building elements without innerHTML: text from the API (error messages, keys, file names)
// can never become markup.

/**
 * h("a", {href: "#", class: "x"}, "text", child) → an element.
 * Attributes: `class`, `text`, `on<event>` (a listener), booleans (set when true).
 * @param {string} tag
 * @param {Record<string, any>} [attrs]
 * @param {...(Node | string | null | undefined | false)} children
 */
export function h(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      element.addEventListener(name.slice(2), value);
    } else if (name === "text") {
      element.textContent = String(value);
    } else {
      element.setAttribute(name, value === true ? "" : String(value));
    }
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    element.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
}

/** Replace an element's children. */
export function fill(element, ...children) {
  element.replaceChildren();
  append(element, children);
  return element;
}

/** document.getElementById, typed loosely for the page's own ids. */
export function $(id) {
  const element = document.getElementById(id);
  if (!element) throw new Error(`no #${id} in the page`);
  return element;
}

/** A status line: kind "error", "ok", "info" or "" (hidden when there is no text). */
export function say(element, text, kind = "info") {
  element.textContent = text || "";
  element.dataset.kind = kind;
  element.hidden = !text;
}

/** A "not available on this server" note for a route that answered 404. */
export function notAvailable(what) {
  return h("p", { class: "empty", text: `${what} is not available on this server.` });
}
