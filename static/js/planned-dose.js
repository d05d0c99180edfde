// Plan and appointment forms: show only the dose field the route uses (mg/kg for IV and IM,
// mg for the others). The server validates the dose in the route's unit either way.
(function () {
  "use strict";
  document.querySelectorAll("form[data-planned-dose]").forEach((form) => {
    const route = form.elements.route;
    if (!route) return;
    const wrapper = (name) => {
      const input = form.elements[name];
      return input && (input.closest(".mb-3") || input.parentElement);
    };
    function update() {
      const weightBased = route.value === "iv" || route.value === "im";
      const perKg = wrapper("dose_mg_per_kg");
      const mg = wrapper("dose_mg");
      if (perKg) perKg.hidden = !weightBased;
      if (mg) mg.hidden = weightBased;
    }
    route.addEventListener("change", update);
    update();
  });
})();
