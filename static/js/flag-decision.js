// Flag decision: show only the fields of the decision chosen (what was done and its details
// when accepting, the reason when declining). The server checks each decision's own fields
// and clears the others either way; without JavaScript every field shows.
(function () {
  "use strict";
  const form = document.querySelector("form[data-flag-decision]");
  if (!form) return;
  const wrapper = (name) => form.elements[name].closest(".mb-3") || form.elements[name].parentElement;
  const accepting = ["action", "detail"].map(wrapper);
  const declining = [wrapper("reason")];
  function update() {
    const chosen = (form.querySelector("input[name=decision]:checked") || {}).value;
    accepting.forEach((el) => { el.hidden = chosen === "declined"; });
    declining.forEach((el) => { el.hidden = chosen === "accepted"; });
  }
  form.addEventListener("change", update);
  update();
})();
