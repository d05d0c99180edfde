// Assessment form: the total and its severity band as the clinician scores each item.
// The server recomputes both; nothing typed here is trusted.
(function () {
  "use strict";
  const form = document.getElementById("assessment-form");
  if (!form) return;
  const bands = JSON.parse(document.getElementById("bands").textContent);
  const items = Array.from(new Set(
    Array.from(form.querySelectorAll("input.score-item, .score-items input[type=radio]")).map((i) => i.name)
  ));

  function update() {
    let total = 0, answered = 0;
    for (const name of items) {
      const checked = form.querySelector('input[name="' + name + '"]:checked');
      if (checked) { total += parseInt(checked.value, 10); answered += 1; }
    }
    document.getElementById("assessment-total").textContent = answered ? total : "–";
    const band = bands.find((b) => total >= b[0] && total <= b[1]);
    document.getElementById("assessment-band").textContent = answered === items.length
      ? band[2] : (items.length - answered) + " item(s) left" + (answered ? " · so far " + band[2] : "");
  }

  form.addEventListener("change", update);
  update();
})();
