/* The run page: one chart per metric series, refreshed while the run is in progress. */
(function () {
  "use strict";

  const REFRESH_MS = 5000;
  const HISTORY_KEYS = [
    "train_loss", "val_loss", "train_acc", "val_acc", "train_f1",
    "val_precision", "val_recall", "val_f1", "val_auroc",
  ];
  const ROUND_KEYS = ["loss", "accuracy", "precision", "recall", "f1", "auroc"];

  /* Series of the run as [{name, xs, ys}] from the per-epoch or per-round reads. */
  function centralizedSeries(results) {
    const history = results.training_history;
    return HISTORY_KEYS.map(function (key) {
      const xs = [], ys = [];
      history.forEach(function (entry) {
        if (entry[key] != null) { xs.push(entry.epoch); ys.push(entry[key]); }
      });
      return { name: key, xs: xs, ys: ys };
    }).filter(function (s) { return s.xs.length > 0; });
  }

  function federatedSeries(rounds) {
    return ROUND_KEYS.map(function (key) {
      const xs = [], ys = [];
      rounds.rounds.forEach(function (entry) {
        if (entry.metrics[key] != null) { xs.push(entry.round); ys.push(entry.metrics[key]); }
      });
      return { name: "server_" + key, xs: xs, ys: ys };
    }).filter(function (s) { return s.xs.length > 0; });
  }

  Runs.onReady(function () {
    const article = document.getElementById("run");
    const container = document.getElementById("charts");
    if (!article || !container) return;
    const runId = article.dataset.runId;
    const federated = article.dataset.mode === "federated";
    const unit = federated ? "round" : "epoch";
    const dataUrl = federated
      ? "/api/runs/" + runId + "/federated-rounds"
      : "/api/runs/" + runId + "/metrics";
    const status = document.getElementById("charts-status");
    const charts = new Map(); // series name -> uPlot

    function draw(data) {
      const series = federated ? federatedSeries(data) : centralizedSeries(data);
      if (!series.length) {
        const empty = document.createElement("p");
        empty.className = "empty";
        empty.textContent = federated
          ? "No server evaluation yet: there are no curves to draw."
          : "No metrics logged yet: there are no curves to draw.";
        container.replaceChildren(empty);
        charts.clear();
        RunsCharts.drawn(container);
        return;
      }
      if (!charts.size) container.replaceChildren();
      series.forEach(function (s) {
        const data = [s.xs, s.ys];
        const existing = charts.get(s.name);
        if (existing) {
          existing.setData(data);
          return;
        }
        charts.set(s.name, RunsCharts.lineChart(container, {
          title: s.name,
          note: federated ? "server evaluation, round 0 = initial model" : "",
          xLabel: unit,
          series: [{ label: s.name }],
          data: data,
          initialModel: federated,
        }));
      });
      RunsCharts.drawn(container);
    }

    function fail(error) {
      if (error instanceof Runs.TokenNeeded) return;
      Runs.showError(container, "Could not load the curves: " + error.message);
    }

    Runs.getJSON(dataUrl).then(function (answer) { draw(answer.data); }).catch(fail);

    if (article.dataset.status !== "in_progress") return;
    const timer = window.setInterval(async function () {
      try {
        const [answer, run] = await Promise.all([
          Runs.getJSON(dataUrl),
          Runs.getJSON("/api/runs/" + runId),
        ]);
        if (answer.changed) draw(answer.data);
        if (run.data.status !== "in_progress") {
          window.clearInterval(timer);
          status.textContent = "The run has ended (" + run.data.status.replace("_", " ") +
            "); reload the page for its final figures.";
        }
      } catch (error) {
        window.clearInterval(timer);
        fail(error);
      }
    }, REFRESH_MS);
  });
})();
