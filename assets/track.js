// Live updates and the countdown. The page works without this script; with it, the
// "#live" part is replaced whenever the server sends an update, and relative times tick.
(() => {
  "use strict";
  const live = document.getElementById("live");
  const badge = document.getElementById("connection");
  const lang = document.documentElement.lang || "en";
  const rtf = window.Intl && Intl.RelativeTimeFormat ? new Intl.RelativeTimeFormat(lang, { numeric: "auto" }) : null;
  window.kilnLoadedAt = window.kilnLoadedAt || Date.now();

  function countdown() {
    if (!rtf) return;
    for (const el of live.querySelectorAll("[data-countdown]")) {
      const ms = Date.parse(el.dataset.countdown) - Date.now();
      const abs = Math.abs(ms), minute = 6e4, hour = 36e5, day = 864e5;
      let text;
      if (abs < hour) text = rtf.format(Math.round(ms / minute), "minute");
      else if (abs < 2 * day) text = rtf.format(Math.round(ms / hour), "hour");
      else if (abs < 21 * day) text = rtf.format(Math.round(ms / day), "day");
      else text = rtf.format(Math.round(ms / (7 * day)), "week");
      el.textContent = text;
    }
  }

  function show(state) {
    if (!badge) return;
    badge.hidden = false;
    badge.textContent = badge.dataset[state] || "";
  }

  // A change request being typed survives an update that keeps the same proof round.
  function update(html) {
    const proof = live.querySelector("#proof");
    const comment = live.querySelector("#comment");
    const typed = comment && comment.value, round = proof && proof.dataset.round;
    const focused = document.activeElement === comment;
    live.innerHTML = html;
    const next = live.querySelector("#proof"), box = live.querySelector("#comment");
    if (typed && box && next && next.dataset.round === round) {
      box.value = typed;
      if (focused) box.focus();
    }
  }

  countdown();
  setInterval(countdown, 30000);
  if (!window.EventSource || !live.dataset.events) return;
  const source = new EventSource(live.dataset.events);
  source.addEventListener("open", () => show("live"));
  source.addEventListener("error", () => show("reconnecting"));
  source.addEventListener("update", (e) => {
    update(e.data);
    live.dataset.lastEventId = e.lastEventId;
    countdown();
    show("live");
  });
  // The link was revoked: say so plainly, and stop offering forms that can no longer work.
  source.addEventListener("gone", () => {
    source.close();
    const gone = document.getElementById("gone");
    if (gone && badge) {
      gone.textContent = badge.dataset.gone || "";
      gone.hidden = false;
    }
    if (badge) badge.hidden = true;
    for (const form of document.querySelectorAll("form")) form.hidden = true;
  });
})();
