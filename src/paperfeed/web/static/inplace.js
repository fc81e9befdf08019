// The in-place form POST shared by vote.js, follow.js and library.js (progressive enhancement:
// without JS every such form posts and the page comes back). It sends the form's own POST with
// Accept: application/json and the CSRF token the server put in the form, sends a signed-out
// reader (401) to the sign-in page and back, and turns a refusal into an Error carrying the
// server's message. No inline code (CSP-safe).
(function () {
  "use strict";
  var pf = window.paperfeed = window.paperfeed || {};

  // POST ``form`` (``fields`` override its inputs). Resolves to the JSON answer; rejects with an
  // Error: ``signin`` set on a 401 (the browser is already on its way to /signin), ``server`` set
  // when the server refused (message: its ``detail`` or ``fallback``), neither on a network error.
  pf.post = function (form, fields, fallback) {
    var body = new FormData(form);
    Object.keys(fields || {}).forEach(function (k) { body.set(k, fields[k]); });
    var token = form.querySelector("input[name=csrf_token]");
    var headers = { "Accept": "application/json" };
    if (token) headers["X-CSRF-Token"] = token.value;
    return fetch(form.action, { method: "POST", body: body, headers: headers, credentials: "same-origin" })
      .then(function (res) {
        return res.json().catch(function () { return {}; }).then(function (data) {
          var err;
          if (res.status === 401) {
            window.location.href = "/signin?next=" + encodeURIComponent(window.location.pathname + window.location.search);
            err = new Error("signin"); err.signin = true; throw err;
          }
          if (!res.ok) {
            err = new Error((data && data.detail && String(data.detail)) || fallback || "Could not do that right now.");
            err.server = true; throw err;
          }
          return data;
        });
      });
  };

  // A status line of class ``cls`` inside ``parent`` (made on first use), or removed (text null).
  pf.status = function (parent, cls, text) {
    var el = parent.querySelector("." + cls);
    if (text === null) { if (el) el.remove(); return; }
    if (!el) { el = document.createElement("span"); el.className = cls; el.setAttribute("role", "status"); parent.appendChild(el); }
    el.textContent = text;
  };

  pf.busy = function (button, on) {
    if (on) button.setAttribute("aria-busy", "true"); else button.removeAttribute("aria-busy");
  };

  // Take over the submit of forms with class ``formClass``: ``handle(form, button)`` returns a
  // promise; the button is busy (and further clicks ignored) until it settles.
  pf.enhance = function (formClass, buttonSelector, handle) {
    document.addEventListener("submit", function (ev) {
      var form = ev.target;
      if (!form || !form.classList || !form.classList.contains(formClass) || !window.fetch || !window.FormData) return;
      var button = form.querySelector(buttonSelector);
      if (!button) return;
      ev.preventDefault();
      if (button.getAttribute("aria-busy") === "true") return;
      pf.busy(button, true);
      Promise.resolve(handle(form, button)).catch(function () {}).then(function () { pf.busy(button, false); });
    });
  };
})();
