// folderd upload page: drag and drop (or choose) files; each one is sent on its own
// request with a progress bar, then followed through the queue by the live stream.
// Names are only ever set with textContent, never as HTML.
(function () {
  "use strict";
  var form = document.getElementById("upload-form");
  var zone = document.getElementById("dropzone");
  var input = document.getElementById("file-input");
  var table = document.getElementById("uploads");
  var tbody = table.querySelector("tbody");
  var byPath = {};
  var byUid = {};
  var FINAL = { processed: true, failed: true };

  function cell(row, text) {
    var td = document.createElement("td");
    if (text !== undefined) td.textContent = text;
    row.appendChild(td);
    return td;
  }

  function setState(entry, state, text, uid) {
    if (FINAL[entry.state]) return;
    entry.state = state;
    entry.stateCell.dataset.state = state;
    entry.stateCell.textContent = "";
    if (uid) { entry.uid = uid; byUid[uid] = entry; }
    if (entry.uid) {
      var a = document.createElement("a");
      a.href = "/files/" + encodeURIComponent(entry.uid);
      a.textContent = text;
      entry.stateCell.appendChild(a);
    } else {
      entry.stateCell.textContent = text;
    }
    entry.touched = Date.now();
  }

  function onEvent(msg) {
    var entry = (msg.uid && byUid[msg.uid]) || (msg.path !== undefined && byPath[msg.path]);
    if (!entry) return;
    if (msg.kind === "file_queued") setState(entry, "queued", "queued");
    else if (msg.kind === "file_started") setState(entry, "processing", "processing", msg.uid);
    else if (msg.kind === "file_retry") setState(entry, "processing", "retrying: " + (msg.error || ""), msg.uid);
    else if (msg.kind === "file_processed") setState(entry, "processed", "processed", msg.uid);
    else if (msg.kind === "file_failed") setState(entry, "failed", "failed: " + (msg.error || ""), msg.uid);
    if (msg.path !== undefined && msg.path !== entry.path) { byPath[msg.path] = entry; }
  }

  // Events can be coalesced in a burst: a row with no news for a while asks the API.
  function recheck() {
    Object.keys(byPath).forEach(function (path) {
      var entry = byPath[path];
      if (!entry.path || FINAL[entry.state] || Date.now() - entry.touched < 3000) return;
      entry.touched = Date.now();
      fetch("/api/files?limit=5&q=" + encodeURIComponent(entry.path))
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (page) {
          if (!page) return;
          page.files.forEach(function (f) {
            if (f.rel === entry.path && (f.state === "processed" || f.state === "failed")) {
              setState(entry, f.state, f.state, f.uid);
            }
          });
        })
        .catch(function () {});
    });
  }

  function upload(file) {
    table.hidden = false;
    var row = document.createElement("tr");
    row.className = "upload";
    var name = cell(row, file.name);
    name.className = "name";
    var progressCell = cell(row);
    var bar = document.createElement("progress");
    bar.max = file.size || 1;
    bar.value = 0;
    progressCell.appendChild(bar);
    var entry = { file: file, row: row, stateCell: cell(row, "uploading"), state: "uploading",
                  path: null, uid: null, touched: Date.now() };
    entry.stateCell.dataset.state = "uploading";
    tbody.insertBefore(row, tbody.firstChild);

    var xhr = new XMLHttpRequest();
    xhr.open("POST", "/api/upload");
    xhr.upload.onprogress = function (e) { if (e.lengthComputable) { bar.max = e.total; bar.value = e.loaded; } };
    xhr.onload = function () {
      var body = null;
      try { body = JSON.parse(xhr.responseText); } catch (err) { body = null; }
      if (xhr.status === 201 && body && body.files && body.files.length) {
        bar.value = bar.max;
        entry.path = body.files[0].path;
        byPath[entry.path] = entry;
        setState(entry, "uploaded", "uploaded as " + entry.path);
        window.folderd.recent.slice().forEach(onEvent);  // events that beat the response
      } else if (xhr.status === 401) {
        setState(entry, "failed", "log in first (the dashboard needs its token)");
      } else {
        setState(entry, "failed", "refused: " + ((body && body.error) || ("HTTP " + xhr.status)));
      }
    };
    xhr.onerror = function () { setState(entry, "failed", "upload failed (network)"); };
    var data = new FormData();
    data.append("file", file, file.name);
    xhr.send(data);
  }

  function uploadAll(files) {
    for (var i = 0; i < files.length; i++) upload(files[i]);
  }

  window.folderd.on(onEvent);
  window.folderd.on(function (msg) { if (msg.kind === "status") recheck(); });
  input.addEventListener("change", function () { uploadAll(input.files); input.value = ""; });
  form.addEventListener("submit", function (e) { e.preventDefault(); uploadAll(input.files); });
  ["dragenter", "dragover"].forEach(function (t) {
    zone.addEventListener(t, function (e) { e.preventDefault(); zone.classList.add("over"); });
  });
  ["dragleave", "drop"].forEach(function (t) {
    zone.addEventListener(t, function (e) { e.preventDefault(); zone.classList.remove("over"); });
  });
  zone.addEventListener("drop", function (e) { uploadAll(e.dataTransfer.files); });
})();
