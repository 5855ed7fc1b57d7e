// folderd pipeline graph: applies the SSE stream's "rates" messages (built by the server's
// graph.live: labels, widths) to the server-rendered SVG. Elements are found by their
// data-* ids on every message, so a refetched fragment keeps updating; only textContent
// and numbers are set, nothing is parsed as HTML.
(function () {
  "use strict";
  function each(attr, table, fn) {
    document.querySelectorAll("[" + attr + "]").forEach(function (el) {
      var entry = table[el.getAttribute(attr)];
      if (entry) fn(el, entry);
    });
  }
  function flow(el, rate) { el.classList.toggle("flow", rate > 0); }

  window.folderd.on(function (msg) {
    if (msg.kind !== "rates") return;
    each("data-edge", msg.edges, function (el, e) {
      el.style.strokeWidth = e.width + "px";
      flow(el, e.rate);
    });
    each("data-edge-label", msg.edges, function (el, e) {
      el.textContent = e.label;
      flow(el, e.rate);
    });
    each("data-node-label", msg.nodes, function (el, n) {
      el.textContent = n.label;
      flow(el, n.rate);
      if (n.errors) el.parentNode.classList.add("failing");
    });
  });
})();
