/* The run list: "Compare selected" is enabled once two or more runs are ticked. */
(function () {
  "use strict";

  Runs.onReady(function () {
    const form = document.querySelector(".run-table-form");
    if (!form) return;
    const button = form.querySelector("button[type=submit]");
    function update() {
      const ticked = form.querySelectorAll("input[name=run_ids]:checked").length;
      button.disabled = ticked < 1;
      button.textContent = ticked ? "Compare selected (" + ticked + ")" : "Compare selected";
    }
    form.addEventListener("change", update);
    update();
  });
})();
