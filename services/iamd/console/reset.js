// The password-reset page: the mailed link carries the one-time code in its
// fragment (#code=…), which browsers never send to a server or put in a
// Referer. The page removes it from the address bar at once and posts it
// with the new password to POST /api/iam/password/reset.
"use strict";

(() => {
  const code = new URLSearchParams(location.hash.slice(1)).get("code");
  history.replaceState(null, "", location.pathname);
  const form = document.getElementById("reset-form");
  const error = document.getElementById("reset-error");
  if (!code) {
    form.hidden = true;
    document.getElementById("no-code").hidden = false;
    return;
  }
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    const newPassword = document.getElementById("new-password").value;
    if (newPassword !== document.getElementById("repeat-password").value) {
      error.textContent = "The two passwords differ.";
      return;
    }
    const button = form.querySelector("button");
    button.disabled = true;
    try {
      const response = await fetch("../api/iam/password/reset", {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify({ code, newPassword }),
      });
      if (response.status === 204) {
        form.hidden = true;
        document.getElementById("reset-done").hidden = false;
        return;
      }
      let message = `The service answered ${response.status}.`;
      try {
        const body = await response.json();
        message = body.message || body.detail || message;
      } catch (_) {
        // Not JSON: keep the status.
      }
      error.textContent = message;
    } catch (_) {
      error.textContent = "The service cannot be reached; try again.";
    } finally {
      button.disabled = false;
    }
  });
})();
