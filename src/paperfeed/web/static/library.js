// In-place library buttons (progressive enhancement: without this file the forms post and the page
// comes back). Save toggles the paper in the Saved collection; "Not interested" and "Hide" fold the
// card into a line with Undo. Sends the same form POST with Accept: application/json and the CSRF
// token the server put in the form. No inline code (CSP-safe).
(function () {
  "use strict";
  function post(form, fields) {
    var body = new FormData(form);
    Object.keys(fields || {}).forEach(function (k) { body.set(k, fields[k]); });
    var token = form.querySelector("input[name=csrf_token]");
    var headers = { "Accept": "application/json" };
    if (token) headers["X-CSRF-Token"] = token.value;
    return fetch(form.action, { method: "POST", body: body, headers: headers, credentials: "same-origin" })
      .then(function (res) {
        return res.json().catch(function () { return {}; }).then(function (data) {
          if (res.status === 401) {
            window.location.href = "/signin?next=" + encodeURIComponent(window.location.pathname + window.location.search);
            throw new Error("signin");
          }
          if (!res.ok) throw new Error((data && data.detail && String(data.detail)) || "Could not do that right now.");
          return data;
        });
      });
  }
  function showError(form, text) {
    if (text === "signin") return;
    var el = form.parentNode.querySelector(".lib-error");
    if (!el) { el = document.createElement("span"); el.className = "lib-error"; el.setAttribute("role", "status"); form.parentNode.appendChild(el); }
    el.textContent = text;
  }
  function busy(button, on) { if (on) button.setAttribute("aria-busy", "true"); else button.removeAttribute("aria-busy"); }

  function onSave(form, button) {
    post(form).then(function (data) {
      var on = !!data.saved;
      button.classList.toggle("saved", on);
      button.setAttribute("aria-pressed", on ? "true" : "false");
      button.title = on ? "In your Saved collection: click to remove" : "Save to your library";
      var label = button.querySelector(".save-label");
      if (label) label.textContent = on ? "Saved" : "Save";
    }).catch(function (e) { showError(form, e.message); }).then(function () { busy(button, false); });
  }

  function onFeedback(form, button) {
    var kind = form.querySelector("input[name=kind]").value;
    var onInput = form.querySelector("input[name=on]");
    var turnOn = onInput.value === "true";
    post(form).then(function (data) {
      var card = form.closest(".card");
      if (turnOn && card) {
        var note = document.createElement("div");
        note.className = "dismissed-note";
        note.setAttribute("role", "status");
        var text = document.createElement("span");
        text.textContent = kind === "hidden" ? "Hidden from your feeds." : "Not interested: you will see fewer papers like this.";
        var undo = document.createElement("button");
        undo.type = "button"; undo.className = "linklike undo"; undo.textContent = "Undo";
        undo.addEventListener("click", function () {
          busy(undo, true);
          post(form, { on: "false" }).then(function () {
            card.classList.remove("dismissed"); note.remove();
            onInput.value = "true"; button.setAttribute("aria-pressed", "false");
            button.textContent = kind === "hidden" ? "Hide" : "Not interested";
            button.focus();
          }).catch(function (e) { text.textContent = e.message; busy(undo, false); });
        });
        note.appendChild(text); note.appendChild(undo);
        card.appendChild(note);
        card.classList.add("dismissed");
        undo.focus();
      } else {
        var on = !!data.active;
        onInput.value = on ? "false" : "true";
        button.setAttribute("aria-pressed", on ? "true" : "false");
        button.textContent = kind === "hidden" ? (on ? "Hidden · unhide" : "Hide") : (on ? "Not interested · undo" : "Not interested");
      }
    }).catch(function (e) { showError(form, e.message); }).then(function () { busy(button, false); });
  }

  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    if (!form || !form.classList || !window.fetch || !window.FormData) return;
    var save = form.classList.contains("save-form"), fb = form.classList.contains("feedback-form");
    if (!save && !fb) return;
    var button = form.querySelector("button");
    if (!button) return;
    ev.preventDefault();
    if (button.getAttribute("aria-busy") === "true") return;
    busy(button, true);
    if (save) onSave(form, button); else onFeedback(form, button);
  });
})();
