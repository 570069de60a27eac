/* The analytics page: average best metrics of both modes as paired bars. */
(function () {
  "use strict";

  Runs.onReady(function () {
    const chart = document.getElementById("analytics-chart");
    const table = document.getElementById("mode-averages");
    if (!chart || !table) return;
    const rows = Array.from(table.querySelectorAll("tr[data-metric]"));
    const categories = rows.map(function (row) { return row.dataset.metric; });
    const values = [1, 2].map(function (column) {
      return rows.map(function (row) {
        const text = row.cells[column].dataset.value;
        return text === "" ? null : Number(text);
      });
    });
    RunsCharts.barChart(chart, {
      xLabel: "metric",
      categories: categories,
      series: [{ label: "centralized" }, { label: "federated" }],
      data: values,
      yRange: [0, 1],
    });
    RunsCharts.drawn(chart);
  });
})();
