// The dashboard's small script. Everything works without it; it adds live updates that keep
// the user's selection, scroll and typing, photo previews, copy buttons and a selection count.
(function () {
  "use strict";
  var body = document.body;

  function picked() {
    return Array.prototype.map.call(document.querySelectorAll('input[name="ref"]:checked'), function (c) { return c.value; });
  }

  function showCount() {
    var out = document.getElementById("picked");
    if (out) { var n = picked().length; out.textContent = n ? n + " ✓" : ""; }
  }
  document.addEventListener("change", function (e) {
    if (e.target && e.target.name === "ref") { showCount(); }
  });

  // Live: on a change, fetch this page again and swap each live region whose content
  // changed, unless the user is typing in it; re-tick what was ticked.
  var source = body.getAttribute("data-live");
  var busy = false, again = false;
  function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    var keep = picked();
    fetch(location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) { if (r.redirected || !r.ok) { throw new Error("status " + r.status); } return r.text(); })
      .then(function (html) {
        var next = new DOMParser().parseFromString(html, "text/html");
        document.querySelectorAll("[data-live-region]").forEach(function (region) {
          var fresh = region.id && next.getElementById(region.id);
          if (!fresh || region.contains(document.activeElement) && document.activeElement.matches("input:not([type=checkbox]),textarea,select")) { return; }
          if (fresh.innerHTML !== region.innerHTML) { region.innerHTML = fresh.innerHTML; }
        });
        keep.forEach(function (ref) {
          document.querySelectorAll('input[name="ref"]').forEach(function (c) { if (c.value === ref) { c.checked = true; } });
        });
        showCount();
      })
      .catch(function () {})
      .then(function () { busy = false; if (again) { again = false; refresh(); } });
  }
  if (source && window.EventSource) {
    var es = new EventSource(source);
    // Marks the page while the stream is open (tests wait for it; CSS may show it).
    es.onopen = function () { body.setAttribute("data-live-open", ""); };
    es.onerror = function () { body.removeAttribute("data-live-open"); };
    es.addEventListener("changed", refresh);
    es.addEventListener("gone", function () { es.close(); location.reload(); });
  }

  // Photo previews before sending.
  var photo = document.getElementById("photo"), previews = document.getElementById("previews");
  if (photo && previews && window.URL) {
    photo.addEventListener("change", function () {
      previews.textContent = "";
      Array.prototype.forEach.call(photo.files, function (f) {
        var img = document.createElement("img");
        img.src = URL.createObjectURL(f);
        img.alt = f.name;
        img.onload = function () { URL.revokeObjectURL(img.src); };
        previews.appendChild(img);
      });
    });
  }

  // Copy buttons.
  document.addEventListener("click", function (e) {
    var id = e.target && e.target.getAttribute && e.target.getAttribute("data-copy");
    if (!id) { return; }
    var input = document.getElementById(id);
    if (!input) { return; }
    input.select();
    if (navigator.clipboard) { navigator.clipboard.writeText(input.value); } else { document.execCommand("copy"); }
  });
})();
