/* The run page: one chart per metric series (metric-history), zoom that re-asks for the
 * zoomed range, clients' curves, and a refresh while the run is in progress. */
(function () {
  "use strict";

  const REFRESH_MS = 5000;
  const MAX_POINTS = 1000;

  function historyUrl(runId, params) {
    const query = new URLSearchParams(Object.assign({ max_points: String(MAX_POINTS) }, params));
    return "/api/runs/" + runId + "/metric-history?" + query.toString();
  }

  /* x of a client's points: the step, or, when the steps do not increase (clients that log
   * every round at step 0 with its round number), the point's position: points come
   * ordered by step, then round. */
  function clientXs(series) {
    const increasing = series.steps.every(function (step, i) { return i === 0 || step > series.steps[i - 1]; });
    return increasing ? series.steps : series.steps.map(function (_, i) { return i + 1; });
  }

  /* Losses, then accuracies, then the other scores; counts and the rest at the end. */
  function rank(name) {
    if (/cm_(tp|tn|fp|fn)$|num_samples$/.test(name)) return 4;
    if (/loss$/.test(name)) return 0;
    if (/(acc|accuracy)$/.test(name)) return 1;
    if (/(precision|recall|f1|f1_score|auroc|auc)$/.test(name)) return 2;
    return 3;
  }

  function byRank(a, b) {
    return rank(a.name) - rank(b.name) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
  }

  function emptyNote(container, text) {
    const note = document.createElement("p");
    note.className = "empty";
    note.textContent = text;
    container.replaceChildren(note);
  }

  Runs.onReady(function () {
    const article = document.getElementById("run");
    const container = document.getElementById("charts");
    if (!article || !container) return;
    const runId = article.dataset.runId;
    const federated = article.dataset.mode === "federated";
    const unit = federated ? "round" : "epoch";
    // Centralized step s is epoch s + 1; federated series use the round number itself.
    const shift = federated ? 0 : 1;
    const status = document.getElementById("charts-status");
    const fullUrl = historyUrl(runId, {});
    const charts = new Map(); // series name -> {plot, series, zoomed}

    function columns(series) {
      return [series.steps.map(function (step) { return step + shift; }), series.values];
    }

    function title(series) {
      return series.downsampled
        ? series.total_points.toLocaleString() + " points, " + series.steps.length + " shown"
        : "";
    }

    async function zoom(name, min, max) {
      const entry = charts.get(name);
      if (!entry || !entry.series.downsampled) return; // every point is already there
      const start = Math.max(0, Math.floor(min) - shift);
      const end = Math.max(start, Math.ceil(max) - shift);
      try {
        const answer = await Runs.getJSON(historyUrl(runId, {
          names: name, start_step: String(start), end_step: String(end),
        }));
        const detail = answer.data.series[0];
        if (detail && detail.steps.length) {
          entry.zoomed = true;
          entry.plot.setData(columns(detail), false);
        }
      } catch (error) {
        if (!(error instanceof Runs.TokenNeeded)) status.textContent = error.message;
      }
    }

    function resetZoom(name) {
      const entry = charts.get(name);
      if (entry && entry.zoomed) {
        entry.zoomed = false;
        entry.plot.setData(columns(entry.series), true);
      }
    }

    function draw(answer) {
      const series = answer.series.filter(function (s) { return s.total_points > 0; }).sort(byRank);
      if (!series.length) {
        emptyNote(container, federated
          ? "No server evaluation or metric yet: there are no curves to draw."
          : "No metrics logged yet: there are no curves to draw.");
        charts.clear();
        RunsCharts.drawn(container);
        return;
      }
      if (!charts.size) container.replaceChildren();
      series.forEach(function (s) {
        const existing = charts.get(s.name);
        if (existing) {
          existing.series = s;
          if (!existing.zoomed) existing.plot.setData(columns(s));
          return;
        }
        const server = s.name.indexOf("server_") === 0;
        const named = s.display_name !== s.name;
        const plot = RunsCharts.lineChart(container, {
          title: s.display_name,
          note: [named ? s.name : "", server ? "server evaluation" : "", title(s)]
            .filter(Boolean).join(" · "),
          xLabel: unit,
          series: [{ label: s.name }],
          data: columns(s),
          initialModel: federated && server,
          onZoom: function (min, max) { zoom(s.name, min, max); },
          onReset: function () { resetZoom(s.name); },
        });
        charts.set(s.name, { plot: plot, series: s, zoomed: false });
      });
      RunsCharts.drawn(container);
    }

    function fail(error) {
      if (error instanceof Runs.TokenNeeded) return;
      Runs.showError(container, "Could not load the curves: " + error.message);
    }

    Runs.getJSON(fullUrl).then(function (answer) { draw(answer.data); }).catch(fail);
    if (federated) drawClients(runId);

    if (article.dataset.status !== "in_progress") return;
    const timer = window.setInterval(async function () {
      try {
        const [answer, run] = await Promise.all([
          Runs.getJSON(fullUrl),
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

  /* Federated runs: a table of clients and, per metric, every client's curve overlaid. */
  async function drawClients(runId) {
    const section = document.getElementById("clients");
    const table = document.getElementById("clients-table");
    const container = document.getElementById("client-charts");
    if (!section || !table || !container) return;
    let clients;
    try {
      clients = (await Runs.getJSON("/api/runs/" + runId + "/clients")).data.clients;
    } catch (error) {
      if (!(error instanceof Runs.TokenNeeded)) Runs.showError(container, error.message);
      return;
    }
    if (!clients.length) {
      emptyNote(container, "No clients registered for this run yet.");
      RunsCharts.drawn(container);
      return;
    }
    const body = table.querySelector("tbody");
    clients.forEach(function (client) {
      const row = body.insertRow();
      const name = document.createElement("th");
      name.scope = "row";
      name.textContent = client.client_identifier;
      row.appendChild(name);
      row.insertCell().textContent = client.metric_names.length ? client.metric_names.join(", ") : "—";
      row.insertCell().textContent = client.client_config ? JSON.stringify(client.client_config) : "—";
    });
    table.hidden = false;
    const names = Array.from(new Set([].concat.apply([], clients.map(function (c) { return c.metric_names; })))).sort();
    if (!names.length) {
      emptyNote(container, "The clients have not logged metrics of their own yet.");
      RunsCharts.drawn(container);
      return;
    }
    try {
      const answers = await Promise.all(clients.map(function (client) {
        return Runs.getJSON(historyUrl(runId, { client: client.client_identifier, names: names.join(",") }));
      }));
      container.replaceChildren();
      names.forEach(function (metric) {
        const perClient = answers.map(function (answer) {
          const found = answer.data.series.find(function (s) { return s.name === metric; });
          const points = new Map();
          if (found) clientXs(found).forEach(function (x, i) { points.set(x, found.values[i]); });
          return points;
        });
        const steps = new Set();
        perClient.forEach(function (points) { points.forEach(function (_, step) { steps.add(step); }); });
        if (!steps.size) return;
        const xs = Array.from(steps).sort(function (a, b) { return a - b; });
        RunsCharts.lineChart(container, {
          title: metric,
          note: "per client",
          xLabel: "round",
          series: clients.map(function (client, index) {
            return { label: client.client_identifier, color: RunsCharts.palette[index % RunsCharts.palette.length] };
          }),
          data: [xs].concat(perClient.map(function (points) {
            return xs.map(function (x) { return points.has(x) ? points.get(x) : null; });
          })),
        });
      });
      RunsCharts.drawn(container);
    } catch (error) {
      if (!(error instanceof Runs.TokenNeeded)) Runs.showError(container, error.message);
    }
  }
})();
