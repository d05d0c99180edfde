// Polls an export's status while a worker builds it, and shows the download link once ready.
(function () {
  "use strict";
  const section = document.getElementById("export-status");
  if (!section || section.dataset.finished === "true") return;
  const url = section.dataset.statusUrl;
  const el = (id) => document.getElementById(id);

  function show(status) {
    el("export-state").textContent = status.state_label;
    el("export-count").textContent = status.progress; // in words: "14 courses, 3 of 14 reports"
    el("export-progress").value = status.percent;
    el("export-progress").textContent = `${status.percent} %`;
    el("export-error").textContent = status.error;
    el("export-error").hidden = !status.error;
    if (status.state === "failed") el("export-error").classList.replace("alert-warning", "alert-danger");
    el("export-download").hidden = !status.download_url;
  }

  async function poll() {
    try {
      const response = await fetch(url, { headers: { Accept: "application/json" } });
      if (!response.ok) throw new Error(response.status);
      const status = await response.json();
      show(status);
      if (status.finished) {
        if (status.state === "failed") window.location.reload(); // offers "Run it again"
        return;
      }
    } catch (error) {
      // A dropped request is retried at the next tick; the page says nothing new meanwhile.
    }
    window.setTimeout(poll, 1000);
  }
  window.setTimeout(poll, 500);
})();
