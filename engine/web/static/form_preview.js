// The form editor's live preview: as the admin types, the server draws the form with the
// operator's renderer and the preview is replaced (a pause of 400 ms between requests).
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const editor = document.getElementById("form-editor");
  const preview = document.getElementById("form-preview");
  if (!editor || !preview) {
    return;
  }
  let timer = null;
  const refresh = async () => {
    const body = new FormData(editor);
    try {
      const response = await fetch(editor.dataset.previewUrl, {
        method: "POST", body, credentials: "same-origin",
        headers: {"X-CSRFToken": body.get("csrf_token"), Accept: "application/json"},
      });
      if (response.ok) {
        // The server escapes every admin-authored text it puts in this HTML.
        preview.innerHTML = (await response.json()).html;
      }
    } catch (error) {
      // Offline for a moment: the next keystroke tries again.
    }
  };
  editor.addEventListener("input", () => {
    window.clearTimeout(timer);
    timer = window.setTimeout(refresh, 400);
  });
});
