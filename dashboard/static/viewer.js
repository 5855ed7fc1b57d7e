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
      .then(function (r) { return r.text().then(function (html) { return [r, html]; }); })
      .then(function (answer) {
        var r = answer[0], html = answer[1];
        if (!r.ok) {  // refused (a bad ask, the file gone, the journal away): say why, keep the rest
          refused(body, r.status, html, url);
          return;
        }
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

  // The problem fragment's message (its .notice) in the part's status line; what the part
  // showed stays, so the reader can correct the ask.
  function refused(body, status, html, url) {
    body.removeAttribute("aria-busy");
    var problem = document.createElement("template");
    problem.innerHTML = html;
    var notice = problem.content.querySelector(".notice");
    var line = body.querySelector(".viewer-status");
    if (!line) { window.location.href = url; return; }  // the part's own page says it
    line.textContent = "Not shown (" + status + "): " +
      (notice ? notice.textContent.trim() : "the server refused it");
    line.classList.add("bad");
    line.focus();
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
