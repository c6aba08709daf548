// The console's only script: confirmation prompts on buttons, and the progress view's poll.
"use strict";

document.addEventListener("submit", (event) => {
  const button = event.submitter;
  if (button && button.dataset.confirm && !window.confirm(button.dataset.confirm)) {
    event.preventDefault();
  }
});

document.addEventListener("DOMContentLoaded", () => {
  const view = document.querySelector("[data-status-url]");
  if (!view) {
    return;
  }
  const url = view.dataset.statusUrl;
  const bar = view.querySelector("progress");
  const poll = async () => {
    try {
      const response = await fetch(url, {headers: {Accept: "application/json"}, credentials: "same-origin"});
      if (response.ok) {
        const status = await response.json();
        for (const [key, value] of Object.entries(status.progress || {})) {
          const cell = view.querySelector(`[data-progress="${key}"]`);
          if (cell) {
            cell.textContent = String(value);
          }
        }
        if (bar && status.progress) {
          bar.max = status.progress.total || 1;
          bar.value = status.progress.produced + status.progress.failed;
        }
        if (!status.busy) {
          // A step waits for the operator, or the order ended or stopped: show that page.
          window.location.reload();
          return;
        }
      }
    } catch (error) {
      // The server may be restarting; keep polling.
    }
    window.setTimeout(poll, 1000);
  };
  window.setTimeout(poll, 1000);
});

// ---- The card picker (Search cards step) ----------------------------------------------------
// Its error summary takes the focus when the page loads, so a keyboard or screen reader user
// starts at what is wrong.
document.addEventListener("DOMContentLoaded", () => {
  const summary = document.querySelector(".card-picker [data-focus-on-load]");
  if (summary) {
    summary.focus();
  }
});
