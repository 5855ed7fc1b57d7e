// folderd dashboard: one Server-Sent-Events stream per page. Regions marked data-live
// refetch their server-rendered (and server-escaped) fragment when a matching event
// arrives, at most once per data-live-min-ms (default 1000). Other scripts subscribe
// with folderd.on(fn); folderd.recent holds the last events for late subscribers.
(function () {
  "use strict";
  var listeners = [];
  var recent = [];
  window.folderd = {
    on: function (fn) { listeners.push(fn); },
    recent: recent
  };
  var badge = document.getElementById("live");
  var regions = Array.prototype.slice.call(document.querySelectorAll("[data-live]"));
  // the number of the last batch of file events this page shows (see dashboard/hub.py)
  var seq = parseInt(document.body.dataset.eventsSeq || "-1", 10);

  function setBadge(text, cls) {
    if (badge) { badge.textContent = text; badge.className = "live " + cls; }
  }

  function wanted(region, msg) {
    if (region.dataset.liveWhen === "never") return false;
    var kinds = (region.dataset.liveOn || "").split(/\s+/);
    if (msg.kind === "burst") return true;
    if (kinds.indexOf(msg.kind) < 0) return false;
    var uid = region.dataset.liveUid;
    if (uid && msg.kind !== "status") {
      return msg.uid === uid || (msg.path !== undefined && msg.path === region.dataset.livePath);
    }
    return true;
  }

  function schedule(region) {
    var now = Date.now();
    var min = parseInt(region.dataset.liveMinMs || "1000", 10);
    if (region._busy || region._timer) { region._dirty = true; return; }
    var wait = Math.max(0, (region._last || 0) + min - now);
    region._timer = setTimeout(function () { region._timer = null; refresh(region); }, wait);
  }

  function refresh(region) {
    region._busy = true;
    region._dirty = false;
    region._last = Date.now();
    fetch(region.dataset.live, { headers: { "Accept": "text/html" }, credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (html !== null && region.dataset.liveWhen !== "never") {  // not stopped meanwhile
          var focus = focusedIndex(region);
          var opened = Array.prototype.map.call(region.querySelectorAll("details"),
                                                function (d) { return d.open; });
          region.innerHTML = html;
          region.querySelectorAll("details").forEach(function (d, i) {  // as the reader left them
            if (i < opened.length) d.open = opened[i];
          });
          if (focus >= 0) refocus(region, focus);
          var path = region.querySelector("[data-live-path-now]");
          if (path) region.dataset.livePath = path.dataset.livePathNow;
        }
      })
      .catch(function () {})
      .then(function () {
        region._busy = false;
        if (region._dirty) schedule(region);
      });
  }

  // A keyboard user inside a region keeps their place when it is redrawn: the control at
  // the same position among the region's focusable ones gets the focus back.
  var FOCUSABLE = "a[href], button, input, select, textarea, summary, [tabindex]";
  function focusedIndex(region) {
    var active = document.activeElement;
    if (!active || active === document.body || !region.contains(active)) return -1;
    return Array.prototype.indexOf.call(region.querySelectorAll(FOCUSABLE), active);
  }
  function refocus(region, index) {
    var all = region.querySelectorAll(FOCUSABLE);
    var target = all[Math.min(index, all.length - 1)];
    if (target) target.focus({ preventScroll: true });
  }

  function refreshAll() {
    regions.forEach(function (region) {
      if (region.dataset.liveWhen !== "never") schedule(region);
    });
  }

  // A batch is numbered one past the last; the status sent on (re)connecting carries the
  // last number. Anything else means this page missed a batch: it refreshes what it shows.
  function missed(msg) {
    if (msg.seq === undefined) return false;
    var gap = msg.kind === "seq" ? msg.seq !== seq + 1 : msg.seq !== seq;
    seq = msg.seq;
    return gap;
  }

  var es = new EventSource("/events");
  es.onopen = function () { setBadge("live", "on"); };
  es.onerror = function () { setBadge("reconnecting…", "off"); };
  es.onmessage = function (e) {
    var msg;
    try { msg = JSON.parse(e.data); } catch (err) { return; }
    if (missed(msg)) refreshAll();
    if (msg.kind === "seq") return;
    if (msg.kind !== "status" && msg.kind !== "rates") {  // the latest of those is all that counts
      recent.push(msg);
      if (recent.length > 1000) recent.shift();
    }
    listeners.forEach(function (fn) { try { fn(msg); } catch (err) { console.error(err); } });
    regions.forEach(function (region) { if (wanted(region, msg)) schedule(region); });
  };
  window.addEventListener("beforeunload", function () { es.close(); });
})();
