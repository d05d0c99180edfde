// Each chart box's chart (templates/courses/_chart_box.html), fetched once the page has
// arrived: the page costs the same for a course of 20 sessions or 200, and the chart, which
// draws every one, comes in its own request (courses.views.chart_response).
for (const box of document.querySelectorAll("[data-chart-src]")) {
  box.setAttribute("aria-busy", "true");
  box.querySelector(".chart-waiting").hidden = false;
  fetch(box.dataset.chartSrc, { credentials: "same-origin", redirect: "error" })
    .then((response) => {
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      return response.text();
    })
    .then((html) => {
      box.innerHTML = html; // the server's own escaped markup, as the page's
    })
    .catch(() => {
      box.innerHTML = '<p class="text-danger small chart-failed">The chart could not be ' +
        'loaded. <a href="">Reload the page</a> to try again.</p>';
    })
    .finally(() => box.removeAttribute("aria-busy"));
}
