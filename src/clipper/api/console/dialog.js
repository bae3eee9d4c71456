// Confirmations in one <dialog>: every destructive admin action asks first.

import { $ } from "./dom.js";

/**
 * Ask `question`; resolves true when the person confirms.
 * @param {string} question
 * @param {string} [action] the confirm button's label
 * @param {boolean} [destructive] red for what cannot be undone (discard, cancel, pause)
 */
export function confirmAction(question, action = "Confirm", destructive = true) {
  const dialog = /** @type {HTMLDialogElement} */ ($("confirm-dialog"));
  $("confirm-text").textContent = question;
  $("confirm-ok").textContent = action;
  $("confirm-ok").className = destructive ? "danger" : "primary";
  dialog.returnValue = "";
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
  });
}
