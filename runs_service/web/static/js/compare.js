/* The compare page: overlaid curves of the compared runs from /api/runs/compare.
 *
 * By default one chart per quantity, where a centralized run's validation metric and a
 * federated run's server evaluation of the same quantity share a chart (val_acc with
 * server_accuracy); with "Metrics" given, one chart per named metric. Centralized step s
 * is epoch s + 1; a federated series' step is its round (round 0 = initial model).
 */
(function () {
  "use strict";

  const MAX_POINTS = 1000;
  const QUANTITIES = [
    ["accuracy", ["val_acc", "server_accuracy"]],
    ["loss", ["val_loss", "server_loss"]],
    ["recall (sensitivity)", ["val_recall", "server_recall"]],
    ["AUROC", ["val_auroc", "server_auroc"]],
    ["F1", ["val_f1", "server_f1"]],
  ];

  function compareUrl(runIds, names, range) {
    const query = new URLSearchParams({
      run_ids: runIds.join(","), names: names.join(","), max_points: String(MAX_POINTS),
    });
    if (range) {
      query.set("start_step", String(range[0]));
      query.set("end_step", String(range[1]));
    }
    return "/api/runs/compare?" + query.toString();
  }

  Runs.onReady(async function () {
    const root = document.getElementById("compare");
    const container = document.getElementById("charts");
    if (!root || !container) return;
    const runIds = root.dataset.runIds.split(",").filter(Boolean).map(Number);
    const chosen = (root.dataset.names || "").split(",").filter(Boolean);
    const groups = chosen.length
      ? chosen.map(function (name) { return [name, [name]]; })
      : QUANTITIES;
    const names = [].concat.apply([], groups.map(function (group) { return group[1]; }));
    let answer;
    try {
      answer = (await Runs.getJSON(compareUrl(runIds, names))).data;
    } catch (error) {
      if (!(error instanceof Runs.TokenNeeded)) {
        Runs.showError(container, "Could not load the curves: " + error.message);
      }
      return;
    }
    const federated = new Set(answer.runs.filter(function (run) {
      return run.training_mode === "federated";
    }).map(function (run) { return run.id; }));

    /* One chart's columns: the union of x values, one column per run (null = no point). */
    function columns(series, groupNames) {
      const perRun = runIds.map(function (runId) {
        const points = new Map();
        series.forEach(function (s) {
          if (s.run_id !== runId || groupNames.indexOf(s.name) < 0) return;
          const shift = federated.has(runId) ? 0 : 1;
          s.steps.forEach(function (step, i) { points.set(step + shift, s.values[i]); });
        });
        return points;
      });
      const xs = new Set();
      perRun.forEach(function (points) { points.forEach(function (_, x) { xs.add(x); }); });
      const sorted = Array.from(xs).sort(function (a, b) { return a - b; });
      return [sorted].concat(perRun.map(function (points) {
        return sorted.map(function (x) { return points.has(x) ? points.get(x) : null; });
      }));
    }

    container.replaceChildren();
    groups.forEach(function (group) {
      const data = columns(answer.series, group[1]);
      if (!data[0].length) return;
      let plot = null;
      let zoomed = false;
      const chart = {
        title: group[0],
        note: group[1].join(" / "),
        xLabel: "epoch / round",
        series: runIds.map(function (id, index) {
          return { label: "run " + id, color: RunsCharts.palette[index % RunsCharts.palette.length] };
        }),
        data: data,
        onZoom: async function (min, max) {
          const downsampled = answer.series.some(function (s) {
            return s.downsampled && group[1].indexOf(s.name) >= 0;
          });
          if (!downsampled) return; // every point is already drawn
          const range = [Math.max(0, Math.floor(min) - 1), Math.max(0, Math.ceil(max))];
          try {
            const detail = (await Runs.getJSON(compareUrl(runIds, group[1], range))).data;
            zoomed = true;
            plot.setData(columns(detail.series, group[1]), false);
          } catch (error) {
            if (!(error instanceof Runs.TokenNeeded)) Runs.showError(container, error.message);
          }
        },
        onReset: function () {
          if (zoomed) {
            zoomed = false;
            plot.setData(data, true);
          }
        },
      };
      plot = RunsCharts.lineChart(container, chart);
    });
    if (!container.children.length) {
      const empty = document.createElement("p");
      empty.className = "empty";
      empty.textContent = "None of these runs has points of these metrics yet.";
      container.appendChild(empty);
    }
    RunsCharts.drawn(container);
  });
})();
