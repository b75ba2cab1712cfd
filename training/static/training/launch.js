// The launch form's inputs per kind: every field, picker and card marked data-kinds="kind kind ..." shows
// only while one of its kinds is picked (static/js/training.js fills the kind's defaults on a switch).
(function () {
  "use strict";

  function apply(form, kind) {
    form.querySelectorAll("[data-kinds]").forEach((node) => {
      node.hidden = node.dataset.kinds.split(" ").indexOf(kind) < 0;
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    const form = document.getElementById("launch-form");
    if (!form) return;
    const checked = form.querySelector("input[name=kind]:checked");
    apply(form, checked ? checked.value : "reward_model");
    form.addEventListener("change", (event) => {
      if (event.target.name === "kind") apply(form, event.target.value);
    });
  });
})();
