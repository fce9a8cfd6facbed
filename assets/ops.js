// The dashboard's small script. Everything works without it; it adds live updates that keep
// the user's selection, scroll and typing, photo previews, copy buttons, a selection count and
// drag-and-drop on the board.
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
  var busy = false, again = false, dragged = null;
  function refresh() {
    // A swap in the middle of a drag would take the card and the columns from under it.
    if (busy || dragged) { again = true; return; }
    busy = true;
    var keep = picked();
    fetch(location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) { if (r.redirected || !r.ok) { throw new Error("status " + r.status); } return r.text(); })
      .then(function (html) {
        if (dragged) { again = true; return; }
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
        arm();
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

  // Drag and drop on the board, on top of each card's move buttons: a card may be dropped on
  // exactly the columns its buttons go to, and a drop presses that button, so the move goes
  // through the same form, token and stale-page check as a click.
  function arm() {
    document.querySelectorAll(".board .ticket").forEach(function (card) {
      card.draggable = !!card.querySelector('button[value^="move:"]');
      // Dragging from the reference drags the card, not the link.
      if (card.draggable) { card.querySelectorAll("a").forEach(function (a) { a.draggable = false; }); }
    });
  }
  function moveTo(card, col) {
    var want = card && col && "move:" + col.getAttribute("data-stage");
    return card && Array.prototype.find.call(card.querySelectorAll("button[name=op]"), function (b) { return b.value === want; });
  }
  function mark(on) {
    document.querySelectorAll(".column[data-stage]").forEach(function (col) {
      var ok = on && !!moveTo(dragged, col);
      col.classList.toggle("drop-ok", ok);
      col.classList.toggle("drop-no", on && !ok);
      col.classList.remove("drop-over");
    });
  }
  function columnAt(e) { return e.target.closest ? e.target.closest(".column[data-stage]") : null; }
  document.addEventListener("dragstart", function (e) {
    var card = e.target.closest && e.target.closest(".ticket[draggable=true]");
    if (!card) { return; }
    dragged = card;
    e.dataTransfer.effectAllowed = "move";
    e.dataTransfer.setData("text/plain", card.getAttribute("data-ref"));
    card.classList.add("dragging");
    mark(true);
  });
  document.addEventListener("dragover", function (e) {
    if (!dragged) { return; }
    // Taken everywhere while a card is dragged, so a drop off the allowed columns does
    // nothing at all rather than the browser's default.
    e.preventDefault();
    var col = columnAt(e), ok = !!moveTo(dragged, col);
    e.dataTransfer.dropEffect = ok ? "move" : "none";
    document.querySelectorAll(".column.drop-over").forEach(function (c) { if (c !== col) { c.classList.remove("drop-over"); } });
    if (ok) { col.classList.add("drop-over"); }
  });
  document.addEventListener("drop", function (e) {
    if (!dragged) { return; }
    e.preventDefault();
    var button = moveTo(dragged, columnAt(e));
    if (!button) { return; }
    var said = dragged.getAttribute("data-ref") + " → " + button.textContent.replace("→", "").trim();
    try { sessionStorage.setItem("kiln-dropped", said); } catch (err) { /* announced or not, the move goes */ }
    if (button.form.requestSubmit) { button.form.requestSubmit(button); } else { button.click(); }
  });
  document.addEventListener("dragend", function () {
    if (dragged) { dragged.classList.remove("dragging"); }
    dragged = null;
    mark(false);
    if (again) { again = false; refresh(); }
  });
  arm();
  // After a drop the board comes back with the card moved (a refused move shows its own page
  // instead): say so to a screen reader.
  try {
    var dropped = sessionStorage.getItem("kiln-dropped"), said = document.getElementById("board-status");
    sessionStorage.removeItem("kiln-dropped");
    // Set a moment after load: a live region that changes as the page appears may go unread.
    if (dropped && said) { setTimeout(function () { said.textContent = dropped; }, 300); }
  } catch (err) { /* no storage, no announcement */ }

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
