// POST /api/uploads with XMLHttpRequest: fetch() has no upload progress events.

import { authHeaders, failed } from "./api.js";

/**
 * Upload `file` (multipart field `file`); resolves with the API's answer (uploadKey, ...).
 * @param {File} file
 * @param {(sent: number, total: number) => void} onProgress
 * @returns {{done: Promise<any>, abort: () => void}}
 */
export function upload(file, onProgress) {
  const xhr = new XMLHttpRequest();
  const done = new Promise((resolve, reject) => {
    xhr.open("POST", "/api/uploads");
    for (const [name, value] of Object.entries(authHeaders())) xhr.setRequestHeader(name, value);
    xhr.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) onProgress(event.loaded, event.total);
    });
    xhr.addEventListener("load", () => {
      if (xhr.status >= 200 && xhr.status < 300) resolve(JSON.parse(xhr.responseText));
      else reject(failed(xhr.status, xhr.responseText));
    });
    // The server may close the connection as soon as a file crosses the size limit, before
    // the browser has sent the rest: then there is no answer to read.
    xhr.addEventListener("error", () =>
      reject(failed(0, '{"error": {"code": "UPLOAD_FAILED", "message": "The upload was cut off (the file may be over the size limit)."}}')),
    );
    xhr.addEventListener("abort", () => reject(new DOMException("aborted", "AbortError")));
    const form = new FormData();
    form.append("file", file, file.name);
    xhr.send(form);
  });
  return { done, abort: () => xhr.abort() };
}
