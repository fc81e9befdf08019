// paperfeed's progressive enhancement: every page works without this file.
// - "/" focuses the search box; left/right arrows follow the previous/next links.
// - filter <select>s marked data-autosubmit submit their form on change.
(function () {
  "use strict";
  function typing(el) {
    return el && (el.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(el.tagName));
  }
  document.addEventListener("keydown", function (ev) {
    if (ev.defaultPrevented || ev.altKey || ev.ctrlKey || ev.metaKey || typing(document.activeElement)) return;
    if (ev.key === "/") {
      var box = document.getElementById("site-search");
      if (box) { ev.preventDefault(); box.focus(); box.select(); }
    } else if (ev.key === "ArrowLeft" || ev.key === "ArrowRight") {
      var link = document.querySelector(ev.key === "ArrowLeft" ? "a[rel=prev]" : "a[rel=next]");
      if (link) { window.location.href = link.href; }
    }
  });
  document.addEventListener("change", function (ev) {
    var el = ev.target;
    if (el && el.matches && el.matches("select[data-autosubmit]") && el.form) el.form.submit();
  });
})();
