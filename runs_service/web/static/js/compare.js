/* The compare page: each metric's curves of every compared run, overlaid. */
(function () {
  "use strict";

  const METRICS = [
    ["val_acc", "accuracy"], ["val_loss", "loss"], ["val_recall", "recall"],
    ["val_precision", "precision"], ["val_f1", "f1"], ["val_auroc", "auroc"],
  ];

  /* One run's validation curves keyed by metric: centralized epochs or federated rounds. */
  async function curves(runId) {
    const results = (await Runs.getJSON("/api/runs/" + runId + "/metrics")).data;
    const byMetric = {};
    METRICS.forEach(function (pair) {
      const points = new Map();
      results.training_history.forEach(function (entry) {
        if (entry[pair[0]] != null) points.set(entry.epoch, entry[pair[0]]);
      });
      byMetric[pair[0]] = points;
    });
    return byMetric;
  }

  Runs.onReady(async function () {
    const root = document.getElementById("compare");
    const container = document.getElementById("charts");
    if (!root || !container) return;
    const runIds = root.dataset.runIds.split(",").filter(Boolean);
    let perRun;
    try {
      perRun = await Promise.all(runIds.map(curves));
    } catch (error) {
      if (!(error instanceof Runs.TokenNeeded)) {
        Runs.showError(container, "Could not load the curves: " + error.message);
      }
      return;
    }
    container.replaceChildren();
    METRICS.forEach(function (pair) {
      const steps = new Set();
      perRun.forEach(function (run) { run[pair[0]].forEach(function (_, x) { steps.add(x); }); });
      if (!steps.size) return;
      const xs = Array.from(steps).sort(function (a, b) { return a - b; });
      const data = [xs].concat(perRun.map(function (run) {
        return xs.map(function (x) { return run[pair[0]].has(x) ? run[pair[0]].get(x) : null; });
      }));
      RunsCharts.lineChart(container, {
        title: pair[0],
        xLabel: "epoch / round",
        series: runIds.map(function (id, index) {
          return { label: "run " + id, color: RunsCharts.palette[index % RunsCharts.palette.length] };
        }),
        data: data,
      });
    });
    if (!container.children.length) {
      const empty = document.createElement("p");
      empty.className = "empty";
      empty.textContent = "None of these runs has validation metrics to draw yet.";
      container.appendChild(empty);
    }
    RunsCharts.drawn(container);
  });
})();
