// Assessment form: a grid of items (rows) by scores (columns).
// - The total and its severity band update as the clinician scores; the server recomputes both
//   and trusts nothing typed here.
// - Keyboard entry: with an item focused, typing a digit scores it and moves to the next item;
//   after the last one the focus goes on (difficulty, reason, or the Sign button); on the
//   PHQ-9's difficulty question a digit answers it and Enter signs.
// - The anchors of the focused item show in the sticky bar beside the total.
// Without JavaScript the grid is plain radio buttons and the server still totals and checks.
(function () {
  "use strict";
  const form = document.getElementById("assessment-form");
  if (!form) return;
  const bands = JSON.parse(document.getElementById("bands").textContent);
  const itemMax = parseInt(form.dataset.itemMax, 10);
  const rows = Array.from(form.querySelectorAll("tr.score-row"));
  const names = rows.map((row) => row.querySelector("input[type=radio]").name);
  const anchorLine = document.getElementById("anchor-line");

  function update() {
    let total = 0, answered = 0;
    for (const name of names) {
      const checked = form.querySelector('input[name="' + name + '"]:checked');
      if (checked) { total += parseInt(checked.value, 10); answered += 1; }
    }
    document.getElementById("assessment-total").textContent = answered ? total : "–";
    const band = bands.find((b) => total >= b[0] && total <= b[1]);
    const left = names.length - answered;
    document.getElementById("assessment-band").textContent = left === 0
      ? band[2] : left + (left === 1 ? " item left" : " items left") + (answered ? " · so far " + band[2] : "");
  }

  function focusRow(index) {
    if (index < rows.length) {
      const row = rows[index];
      (row.querySelector("input:checked") || row.querySelector("input")).focus();
      return;
    }
    // Past the last item: the next field after the grid, else the Sign button.
    const next = form.querySelector("#id_difficulty, #id_reason") || document.getElementById("assessment-sign");
    next.focus();
  }

  function showAnchors(row) {
    rows.forEach((r) => r.classList.toggle("score-current", r === row));
    if (anchorLine) anchorLine.textContent = row ? row.dataset.anchors : "";
  }

  // The PHQ-9's difficulty question, reached by keyboard after item 9: a digit answers it
  // (0 = not difficult at all … 3 = extremely) and moves to Sign; Enter signs as it stands.
  const difficulty = form.querySelector("select#id_difficulty");
  if (difficulty) {
    difficulty.addEventListener("keydown", function (event) {
      if (event.altKey || event.ctrlKey || event.metaKey) return;
      if (event.key === "Enter") {
        event.preventDefault();
        form.requestSubmit(document.getElementById("assessment-sign"));
        return;
      }
      if (!/^[0-9]$/.test(event.key)) return;
      event.preventDefault();
      const option = difficulty.options[parseInt(event.key, 10) + 1];  // the first is "—"
      if (!option) return;
      difficulty.value = option.value;
      difficulty.dispatchEvent(new Event("change", { bubbles: true }));
      document.getElementById("assessment-sign").focus();
    });
  }

  form.addEventListener("keydown", function (event) {
    const input = event.target;
    if (!(input instanceof HTMLInputElement) || input.type !== "radio") return;
    if (event.altKey || event.ctrlKey || event.metaKey || !/^[0-9]$/.test(event.key)) return;
    const score = parseInt(event.key, 10);
    event.preventDefault();
    if (score > itemMax) return;  // out of range: nothing happens, the item stays as it was
    const index = rows.indexOf(input.closest("tr.score-row"));
    const choice = rows[index].querySelector('input[value="' + score + '"]');
    choice.checked = true;
    choice.dispatchEvent(new Event("change", { bubbles: true }));
    focusRow(index + 1);
  });

  form.addEventListener("focusin", function (event) {
    showAnchors(event.target.closest ? event.target.closest("tr.score-row") : null);
  });
  form.addEventListener("change", update);

  // After a rejected form the server focused the first bad item (autofocus): centre it so the
  // rows around it and the sticky total stay in view.
  const focused = form.querySelector("[autofocus]");
  if (focused) {
    focused.focus({ preventScroll: true });
    if (form.querySelector(".score-row.table-danger, .is-invalid")) {
      focused.scrollIntoView({ block: "center" });
    }
    showAnchors(focused.closest("tr.score-row"));
  }
  update();
})();
