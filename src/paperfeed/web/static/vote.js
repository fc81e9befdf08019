// In-place upvote toggle (progressive enhancement: without this file the vote form posts and the
// page reloads). Posts through inplace.js, then updates the button from the answer.
(function () {
  "use strict";
  var pf = window.paperfeed;
  if (!pf) return;
  function label(on) { return on ? "upvotes; remove your upvote" : "upvotes; upvote this paper"; }
  function compact(n) {
    if (n >= 10000) return Math.round(n / 1000) + "k";
    if (n >= 1000) return (n / 1000).toFixed(1) + "k";
    return String(n);
  }
  pf.enhance("vote-form", "button.vote", function (form, button) {
    return pf.post(form, null, "Could not vote right now.").then(function (data) {
      var on = !!data.upvoted;
      button.classList.toggle("voted", on);
      button.setAttribute("aria-pressed", on ? "true" : "false");
      var count = button.querySelector(".vote-count");
      if (count && typeof data.upvotes === "number") count.textContent = compact(data.upvotes);
      var sr = button.querySelector(".vote-label");
      if (sr) sr.textContent = label(on);
      button.title = data.upvotes + " upvotes";
      pf.status(form, "vote-error", null);
    }).catch(function (e) {
      if (!e.signin) pf.status(form, "vote-error", e.server ? e.message : "Network error; please try again.");
    });
  });
})();
