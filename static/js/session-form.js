// Session form: show only the dose fields the route uses, and preview the milligrams from the
// weight in force on the session date. The server recomputes and validates everything.
(function () {
  "use strict";
  const form = document.getElementById("session-form");
  if (!form) return;
  const data = JSON.parse(document.getElementById("dose-data").textContent);
  const field = (name) => form.elements[name];
  const preview = document.getElementById("dose-preview");
  const doseHint = document.getElementById("id_dose_mg_helptext");
  const everyHint = doseHint ? doseHint.textContent : "";  // no route chosen: every route's

  function weightOn(day) {
    let found = null;
    for (const w of data.weights) { if (w.on <= day) found = w; }
    return found;
  }

  function show(selector, visible) {
    form.querySelectorAll(selector).forEach((el) => { el.hidden = !visible; });
  }

  // A warning reads in a warning colour: amber above 0.75 mg/kg, red above the maximum.
  function setLevel(level) {
    for (const name of ["info", "warning", "danger"]) {
      preview.classList.toggle("alert-" + name, name === level);
    }
  }

  function update() {
    const route = field("route").value;
    const weightBased = route === "iv" || route === "im";
    show(".weight-based", weightBased);
    show(".fixed-dose", !weightBased);
    show(".iv-only", route === "iv");
    show(".intranasal-only", route === "intranasal");
    // The milligram dose's hint names the chosen route's doses only (the server's words).
    if (doseHint) doseHint.textContent = data.dose_hints[route] || everyHint;
    if (!weightBased) return;
    setLevel("info");
    const perKg = parseFloat(field("dose_mg_per_kg").value);
    const basis = field("weight_basis").value || "actual";
    const day = (field("started_at").value || "").slice(0, 10);
    let kg = null, source = "";
    if (basis === "ideal") {
      kg = data.ideal; source = "ideal body weight (Devine)";
      if (!kg) { setLevel("warning"); preview.textContent = "Ideal body weight needs the patient's height, and a sex of female or male."; return; }
    } else {
      const w = weightOn(day);
      if (!w) { setLevel("warning"); preview.textContent = "No weight recorded on or before " + day + "."; return; }
      kg = w.kg; source = "weight of " + w.on;
    }
    if (isNaN(perKg)) { preview.textContent = "Enter the dose in mg/kg."; return; }
    const mg = Math.round(perKg * parseFloat(kg) * 10) / 10;
    let text = perKg + " mg/kg × " + kg + " kg (" + source + ") = " + mg.toFixed(1) + " mg";
    let level = "info";
    if (perKg > 1.0) { text += " — above the 1.0 mg/kg maximum: it will not be saved"; level = "danger"; }
    else if (perKg > 0.75) { text += " — above 0.75 mg/kg: enhanced monitoring required"; level = "warning"; }
    setLevel(level);
    preview.textContent = text;
  }

  // The REMS form's required fields get a mark after their label.
  form.querySelectorAll("[data-rems-required]").forEach((input) => {
    const label = form.querySelector('label[for="' + input.id + '"]');
    if (!label) return;
    const mark = document.createElement("span");
    mark.className = "rems-required-mark";
    mark.title = "The REMS monitoring form requires it";
    mark.textContent = " ●";
    label.appendChild(mark);
  });

  form.addEventListener("input", update);
  form.addEventListener("change", update);
  update();
})();
