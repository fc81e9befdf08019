// In-place follow/unfollow (progressive enhancement: without this file the follow form posts and
// the page reloads). Posts through inplace.js, then flips the button and the form's action.
(function () {
  "use strict";
  var pf = window.paperfeed;
  if (!pf) return;
  pf.enhance("follow-form", "button.follow", function (form, button) {
    return pf.post(form).then(function (data) {
      pf.status(form, "follow-error", null);
      var on = !!data.following;
      form.setAttribute("action", on ? "/unfollow" : "/follow");
      button.classList.toggle("on", on);
      button.setAttribute("aria-pressed", on ? "true" : "false");
      var sr = button.querySelector(".sr-only");
      button.firstChild.nodeValue = on ? "Following" : "Follow";
      if (sr) sr.textContent = " " + (button.getAttribute("data-label") || "");
    }).catch(function (e) {
      if (e.server) pf.status(form, "follow-error", e.message);
      // a network error: the form still works without JS, leave the page as it is
    });
  });
})();
