// Automatic logoff: the server ends a session after IDLE seconds without a request. While the
// clinician works on a page (typing, clicking) we renew it at most once a minute; two minutes
// before the end we warn, and at the end we leave the page for the login screen.
(function () {
  "use strict";
  const body = document.body;
  const idleSeconds = parseInt(body.dataset.idleSeconds || "0", 10);
  if (!idleSeconds) return;
  const warnBefore = Math.min(120, Math.floor(idleSeconds / 2));
  const warning = document.getElementById("idle-warning");
  const countdown = document.getElementById("idle-countdown");
  let lastRenewal = Date.now();

  function renew() {
    lastRenewal = Date.now();
    fetch(body.dataset.keepaliveUrl, { credentials: "same-origin", cache: "no-store" })
      .then((response) => { if (response.redirected || response.status >= 400) expire(); })
      .catch(() => {});
  }

  function expire() {
    const next = encodeURIComponent(window.location.pathname);
    window.location.assign(body.dataset.loginUrl + "&next=" + next);
  }

  function activity() {
    if (!warning.hidden) return; // the warning needs a deliberate click
    if (Date.now() - lastRenewal > 60000) renew();
  }

  function tick() {
    const left = idleSeconds - Math.floor((Date.now() - Math.max(lastRenewal, 0)) / 1000);
    if (left <= 0) { expire(); return; }
    if (left <= warnBefore) {
      warning.hidden = false;
      countdown.textContent = Math.floor(left / 60) + ":" + String(left % 60).padStart(2, "0");
    } else {
      warning.hidden = true;
    }
  }

  ["keydown", "click", "input"].forEach((name) => document.addEventListener(name, activity));
  document.getElementById("idle-stay").addEventListener("click", () => { renew(); warning.hidden = true; });
  setInterval(tick, 1000);
})();
