// folderd file contents: each part's pager, jump to a line and filter fetch that part's
// server-rendered (and server-escaped) fragment and put it in place; a page that stopped
// part-way through a big file (its status holds data-continue) goes on by itself, a
// bounded number of times. Without JavaScript the same links and forms open the part's
// own page. Focus moves to the new status line, so the keyboard carries on from there.
// Once a part is paged, the live region holding it is no longer redrawn by events.
(function () {
  "use strict";
  var MAX_CONTINUE = 64;

  function fragment(url) {
    return url + (url.indexOf("?") < 0 ? "?" : "&") + "fragment=1";
  }

  function load(body, url, hops) {
    // Someone is reading here: the live region around stops redrawing (and resetting) it.
    var live = body.closest("[data-live]");
    if (live) live.dataset.liveWhen = "never";
    body.setAttribute("aria-busy", "true");
    fetch(fragment(url), { headers: { "Accept": "text/html" }, credentials: "same-origin" })
      .then(function (r) { return r.text(); })
      .then(function (html) {
        body.innerHTML = html;
        body.removeAttribute("aria-busy");
        var more = body.querySelector("[data-continue]");
        if (more && hops < MAX_CONTINUE) {
          setTimeout(function () { load(body, more.dataset.continue, hops + 1); }, 0);
          return;
        }
        var status = body.querySelector(".viewer-status");
        if (status) status.focus();
      })
      .catch(function () { window.location.href = url; });
  }

  document.addEventListener("click", function (e) {
    var link = e.target.closest && e.target.closest("a[data-view]");
    if (!link || e.button !== 0 || e.ctrlKey || e.metaKey || e.shiftKey || e.altKey) return;
    var body = link.closest("[data-viewer]");
    if (!body) return;
    e.preventDefault();
    load(body, link.getAttribute("href"), 0);
  });

  document.addEventListener("submit", function (e) {
    var form = e.target;
    if (!form.matches || !form.matches("form[data-view]")) return;
    var body = form.closest("[data-viewer]");
    if (!body) return;
    e.preventDefault();
    var query = new URLSearchParams(new FormData(form)).toString();
    load(body, form.getAttribute("action") + "?" + query, 0);
  });
})();
