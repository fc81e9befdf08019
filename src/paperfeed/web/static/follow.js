// In-place follow/unfollow (progressive enhancement: without this file the follow form posts and
// the page reloads). Sends the same form POST with Accept: application/json and the CSRF token the
// server put in the form, then flips the button and the form's action. No inline code (CSP-safe).
(function () {
  "use strict";
  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    if (!form || !form.classList || !form.classList.contains("follow-form") || !window.fetch) return;
    var button = form.querySelector("button.follow");
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
        var err = form.querySelector(".follow-error");
        if (!r.res.ok) {
          if (!err) { err = document.createElement("span"); err.className = "follow-error"; err.setAttribute("role", "status"); form.appendChild(err); }
          err.textContent = (r.data && r.data.detail) || "Could not do that right now.";
          return;
        }
        if (err) err.remove();
        var on = !!r.data.following;
        form.setAttribute("action", on ? "/unfollow" : "/follow");
        button.classList.toggle("on", on);
        button.setAttribute("aria-pressed", on ? "true" : "false");
        var sr = button.querySelector(".sr-only");
        button.firstChild.nodeValue = on ? "Following" : "Follow";
        if (sr) sr.textContent = " " + (button.getAttribute("data-label") || "");
      })
      .catch(function () { /* the form still works without JS: leave the page as it is */ })
      .then(function () { button.removeAttribute("aria-busy"); });
  });
})();
