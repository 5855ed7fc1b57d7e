// folderd Preview page: the config is checked as you type (debounced, POST
// /api/preview/check), a file is previewed with POST /api/preview, and the result is
// drawn with textContent only (file contents and names are never parsed as HTML).
(function () {
  "use strict";
  var DEBOUNCE_MS = 400;
  var form = document.getElementById("preview-form");
  var config = document.getElementById("config");
  var state = document.getElementById("config-state");
  var errorsList = document.getElementById("config-errors");
  var source = document.getElementById("source");
  var upload = document.getElementById("upload");
  var result = document.getElementById("preview-result");
  var failure = document.getElementById("preview-error");
  var body = document.getElementById("preview-body");
  var active = config.dataset.active;
  var timer = null;
  var seq = 0;

  function edited() { return config.value !== active; }

  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }

  function post(url, data) {
    return fetch(url, { method: "POST", body: data, credentials: "same-origin" }).then(function (r) {
      return r.json().catch(function () { return { error: "HTTP " + r.status }; }).then(function (j) {
        if (r.status === 401) j.error = "this needs the dashboard token: log in first";
        return { status: r.status, body: j };
      });
    });
  }

  function goToLine(line) {
    var lines = config.value.split("\n");
    var start = 0;
    for (var i = 0; i < line - 1 && i < lines.length; i++) start += lines[i].length + 1;
    config.focus();
    config.setSelectionRange(start, start + (lines[line - 1] || "").length);
  }

  function showErrors(errors) {
    errorsList.textContent = "";
    config.classList.toggle("invalid", errors.length > 0);
    errors.forEach(function (e) {
      var li = el("li");
      var where = (e.line ? "line " + e.line + " · " : "") + e.path;
      if (e.line) {  // a button: reachable and usable by keyboard, as a link without href is not
        var go = el("button", where, "inline-link");
        go.type = "button";
        go.addEventListener("click", function () { goToLine(e.line); });
        li.appendChild(go);
      } else {
        li.appendChild(el("span", where));
      }
      li.appendChild(document.createTextNode(": " + e.message));
      errorsList.appendChild(li);
    });
  }

  function check() {
    if (!edited()) { state.textContent = "active config"; showErrors([]); return; }
    var mine = ++seq;
    state.textContent = "checking…";
    post("/api/preview/check", JSON.stringify({ config: config.value })).then(function (r) {
      if (mine !== seq) return;  // a newer edit is being checked
      if (r.body.error) { state.textContent = r.body.error; return; }
      var n = r.body.errors.length;
      state.textContent = n ? "edited: " + n + " problem(s)" : "edited: valid";
      state.dataset.valid = n ? "no" : "yes";
      showErrors(r.body.errors);
    });
  }

  config.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(check, DEBOUNCE_MS);
  });
  var reset = document.getElementById("reset");  // absent until one logs in
  if (reset) reset.addEventListener("click", function () { config.value = active; check(); });
  document.getElementById("download").addEventListener("click", function () {
    var f = document.getElementById("download-form");
    f.elements.config.value = config.value;
    f.submit();
  });
  source.addEventListener("change", function () { if (source.value) upload.value = ""; });
  upload.addEventListener("change", function () { if (upload.files.length) source.value = ""; });

  function row(tbody, key, value) {
    var tr = el("tr");
    tr.appendChild(el("th", key));
    tr.appendChild(el("td", value));
    tbody.appendChild(tr);
  }

  function draw(data) {
    var route = document.getElementById("route");
    route.textContent = "";
    row(route, "config", data.config);
    row(route, "route", data.route ? "#" + (data.route.index + 1) + ": " + data.route.describe : "none matched");
    row(route, "status", data.summary.status + (data.summary.error ? " — " + data.summary.error.type + ": " + data.summary.error.message : ""));
    Object.keys(data.metadata).forEach(function (k) { row(route, "metadata " + k, data.metadata[k]); });
    var outputs = document.getElementById("outputs");
    outputs.textContent = "";
    var tags = Object.keys(data.outputs);
    if (!tags.length) outputs.appendChild(el("p", "no output", "muted"));
    tags.forEach(function (tag) {
      var out = data.outputs[tag];
      var h = el("h3", tag + " ");
      h.appendChild(el("span", "(" + out.lines.length + " of " + out.total + " line(s))", "muted"));
      var pre = el("pre", null, "output-lines");
      pre.dataset.output = tag;
      pre.tabIndex = 0;  // it scrolls: the keyboard must reach it
      out.lines.forEach(function (line, i) {
        pre.appendChild(el("span", String(i + 1).padStart(4) + "  ", "n"));
        pre.appendChild(document.createTextNode(line + "\n"));
      });
      outputs.appendChild(h);
      outputs.appendChild(pre);
    });
    var trace = document.getElementById("trace");
    trace.textContent = "";
    data.trace.forEach(function (t) {
      var tr = el("tr");
      tr.appendChild(el("td", t.line));
      tr.appendChild(el("td", t.path.join(" → ")));
      tr.appendChild(el("td", t.text));
      trace.appendChild(tr);
    });
    document.getElementById("summary").textContent = JSON.stringify(data.summary, null, 2);
  }

  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var data = new FormData(form);
    if (!edited()) data.delete("config");
    if (!upload.files.length) data.delete("file");
    result.hidden = false;
    failure.hidden = true;
    body.hidden = true;
    state.dataset.running = "yes";
    post("/api/preview", data).then(function (r) {
      delete state.dataset.running;
      if (r.body.error || r.body.errors.length) {
        failure.textContent = r.body.error || "the edited config has problems: fix them first";
        failure.hidden = false;
        if (r.body.errors) showErrors(r.body.errors);
        return;
      }
      draw(r.body);
      body.hidden = false;
    });
  });
})();
