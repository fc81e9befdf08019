// In-place library buttons (progressive enhancement: without this file the forms post and the page
// comes back). Save toggles the paper in the Saved collection; "Not interested" and "Hide" fold the
// card into a line with Undo. Posts through inplace.js. No inline code (CSP-safe).
(function () {
  "use strict";
  var pf = window.paperfeed;
  if (!pf) return;
  function showError(form, e) {
    if (!e.signin) pf.status(form.parentNode, "lib-error", e.message);
  }

  function onSave(form, button) {
    return pf.post(form).then(function (data) {
      var on = !!data.saved;
      button.classList.toggle("saved", on);
      button.setAttribute("aria-pressed", on ? "true" : "false");
      button.title = on ? "In your Saved collection: click to remove" : "Save to your library";
      var label = button.querySelector(".save-label");
      if (label) label.textContent = on ? "Saved" : "Save";
    }).catch(function (e) { showError(form, e); });
  }

  function onFeedback(form, button) {
    var kind = form.querySelector("input[name=kind]").value;
    var onInput = form.querySelector("input[name=on]");
    var turnOn = onInput.value === "true";
    return pf.post(form).then(function (data) {
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
          pf.busy(undo, true);
          pf.post(form, { on: "false" }).then(function () {
            card.classList.remove("dismissed"); note.remove();
            onInput.value = "true"; button.setAttribute("aria-pressed", "false");
            button.textContent = kind === "hidden" ? "Hide" : "Not interested";
            button.focus();
          }).catch(function (e) { text.textContent = e.message; pf.busy(undo, false); });
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
    }).catch(function (e) { showError(form, e); });
  }

  pf.enhance("save-form", "button", onSave);
  pf.enhance("feedback-form", "button", onFeedback);
})();
