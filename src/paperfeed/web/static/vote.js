// In-place upvote toggle (progressive enhancement: without this file the vote form posts and the
// page reloads). Sends the same form POST with Accept: application/json and the CSRF token the
// server put in the form, then updates the button from the answer. No inline code (CSP-safe).
(function () {
  "use strict";
  function label(on) { return on ? "upvotes; remove your upvote" : "upvotes; upvote this paper"; }
  function compact(n) {
    if (n >= 10000) return Math.round(n / 1000) + "k";
    if (n >= 1000) return (n / 1000).toFixed(1) + "k";
    return String(n);
  }
  function showError(form, text) {
    var el = form.querySelector(".vote-error");
    if (!el) { el = document.createElement("span"); el.className = "vote-error"; el.setAttribute("role", "status"); form.appendChild(el); }
    el.textContent = text;
  }
  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    if (!form || !form.classList || !form.classList.contains("vote-form") || !window.fetch) return;
    var button = form.querySelector("button.vote");
    if (!button) return;
    ev.preventDefault();
    if (button.getAttribute("aria-busy") === "true") return;
    button.setAttribute("aria-busy", "true");
    var token = form.querySelector("input[name=csrf_token]");
    var headers = { "Accept": "application/json" };
    if (token) headers["X-CSRF-Token"] = token.value;
    fetch(form.action, { method: "POST", body: new FormData(form), headers: headers, credentials: "same-origin" })
      .then(function (res) {
        return res.json().catch(function () { return {}; }).then(function (data) { return { res: res, data: data }; });
      })
      .then(function (r) {
        if (r.res.status === 401) {
          window.location.href = "/signin?next=" + encodeURIComponent(window.location.pathname + window.location.search);
          return;
        }
        if (!r.res.ok) { showError(form, (r.data && r.data.detail) || "Could not vote right now."); return; }
        var on = !!r.data.upvoted;
        button.classList.toggle("voted", on);
        button.setAttribute("aria-pressed", on ? "true" : "false");
        var count = button.querySelector(".vote-count");
        if (count && typeof r.data.upvotes === "number") count.textContent = compact(r.data.upvotes);
        var sr = button.querySelector(".vote-label");
        if (sr) sr.textContent = label(on);
        button.title = r.data.upvotes + " upvotes";
        var err = form.querySelector(".vote-error");
        if (err) err.remove();
      })
      .catch(function () { showError(form, "Network error; please try again."); })
      .then(function () { button.removeAttribute("aria-busy"); });
  });
})();
