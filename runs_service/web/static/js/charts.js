/* Line and bar charts on uPlot (vendored): one figure per metric, sized to its box. */
(function () {
  "use strict";

  const PALETTE = [
    "#1d4ed8", "#d97706", "#059669", "#db2777", "#7c3aed",
    "#0891b2", "#65a30d", "#dc2626", "#475569", "#a16207",
  ];
  const HEIGHT = 210;
  // Epochs and rounds are whole numbers: the x axis never ticks at 2.5.
  const WHOLE_STEPS = [1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 2500, 5000,
    10000, 20000, 25000, 50000, 100000, 200000, 250000, 500000, 1000000];
  const AXIS = { stroke: "#5b636e", grid: { stroke: "#eceef1", width: 1 }, ticks: { stroke: "#d6dae0" } };

  function formatValue(value) {
    if (value == null) return "—";
    if (Number.isInteger(value)) return String(value);
    return value.toFixed(4);
  }

  /* A dashed line at x = 0 labelled "initial model": round 0 of a federated run. */
  function initialModelMarker(u) {
    const x = u.valToPos(0, "x", true);
    if (!(x >= u.bbox.left - 0.5 && x <= u.bbox.left + u.bbox.width + 0.5)) return;
    const ctx = u.ctx;
    const ratio = window.devicePixelRatio || 1;
    ctx.save();
    ctx.strokeStyle = "#5b636e";
    ctx.setLineDash([4 * ratio, 3 * ratio]);
    ctx.lineWidth = ratio;
    ctx.beginPath();
    ctx.moveTo(x, u.bbox.top);
    ctx.lineTo(x, u.bbox.top + u.bbox.height);
    ctx.stroke();
    ctx.setLineDash([]);
    ctx.fillStyle = "#5b636e";
    ctx.font = 11 * ratio + "px system-ui, sans-serif";
    ctx.textAlign = "left";
    ctx.textBaseline = "bottom";
    ctx.fillText("initial model", x + 4 * ratio, u.bbox.top + u.bbox.height - 4 * ratio);
    ctx.restore();
  }

  function figure(container, title, note) {
    const box = document.createElement("figure");
    box.className = "chart";
    const heading = document.createElement("h3");
    heading.textContent = title;
    if (note) {
      const small = document.createElement("span");
      small.className = "chart-note";
      small.textContent = " " + note;
      heading.appendChild(small);
    }
    const plot = document.createElement("div");
    plot.className = "chart-plot";
    box.append(heading, plot);
    container.appendChild(box);
    return { box: box, heading: heading, plot: plot };
  }

  function keepSized(u, plot) {
    if (!window.ResizeObserver) return;
    let last = plot.clientWidth;
    new ResizeObserver(function () {
      const width = plot.clientWidth;
      if (width > 0 && Math.abs(width - last) > 2) {
        last = width;
        u.setSize({ width: width, height: HEIGHT });
      }
    }).observe(plot);
  }

  /* options: {title, note, xLabel, series: [{label, color?}], data: [xs, ys...],
   *           initialModel: bool, onZoom(min, max), onReset()} */
  function lineChart(container, options) {
    const parts = figure(container, options.title, options.note);
    const series = [{ label: options.xLabel, value: function (u, v) { return v == null ? "—" : String(v); } }];
    options.series.forEach(function (s, index) {
      series.push({
        label: s.label,
        stroke: s.color || PALETTE[index % PALETTE.length],
        width: 1.5,
        spanGaps: true,
        value: function (u, v) { return formatValue(v); },
      });
    });
    const hooks = {};
    if (options.initialModel) hooks.draw = [initialModelMarker];
    if (options.onZoom) {
      hooks.setSelect = [function (u) {
        if (u.select.width < 2) return;
        const min = u.posToVal(u.select.left, "x");
        const max = u.posToVal(u.select.left + u.select.width, "x");
        options.onZoom(min, max);
      }];
    }
    const u = new uPlot({
      width: Math.max(parts.plot.clientWidth, 200),
      height: HEIGHT,
      series: series,
      scales: { x: { time: false } },
      axes: [
        Object.assign({ label: options.xLabel, labelSize: 18, size: 36, incrs: WHOLE_STEPS }, AXIS),
        Object.assign({ size: 56, values: function (u, ticks) { return ticks.map(function (t) { return +t.toFixed(4); }); } }, AXIS),
      ],
      cursor: { drag: { x: true, y: false } },
      legend: { live: true },
      hooks: hooks,
    }, options.data, parts.plot);
    if (options.onReset) {
      u.over.addEventListener("dblclick", function () { options.onReset(); });
    }
    keepSized(u, parts.plot);
    parts.box.uplot = u;
    return u;
  }

  /* Two bars per category (left and right of its tick): e.g. centralized vs federated. */
  function barChart(container, options) {
    const plot = document.createElement("div");
    plot.className = "chart-plot";
    container.appendChild(plot);
    const bars = uPlot.paths.bars;
    const series = [{ label: options.xLabel, value: function (u, v) { return v == null ? "" : options.categories[v]; } }];
    options.series.forEach(function (s, index) {
      series.push({
        label: s.label,
        stroke: PALETTE[index % PALETTE.length],
        fill: PALETTE[index % PALETTE.length] + "cc",
        width: 1,
        paths: bars({ size: [0.4, 60], align: index === 0 ? -1 : 1 }),
        points: { show: false },
        value: function (u, v) { return formatValue(v); },
      });
    });
    const xs = options.categories.map(function (_, index) { return index; });
    const u = new uPlot({
      width: Math.max(plot.clientWidth, 200),
      height: 240,
      series: series,
      scales: { x: { time: false, range: [-0.6, options.categories.length - 0.4] }, y: { range: options.yRange || null } },
      axes: [
        Object.assign({ splits: xs, values: function (u, ticks) { return ticks.map(function (t) { return options.categories[t] || ""; }); }, size: 30 }, AXIS),
        Object.assign({ size: 50 }, AXIS),
      ],
      cursor: { drag: { x: false, y: false } },
      hooks: {},
    }, [xs].concat(options.data), plot);
    keepSized(u, plot);
    return u;
  }

  /* Marks a chart area as drawn once the browser has painted it (tests and timings read it). */
  function drawn(container) {
    window.requestAnimationFrame(function () {
      container.dataset.drawn = "true";
      document.body.dataset.chartsDrawnAt = String(Math.round(performance.now()));
    });
  }

  window.RunsCharts = {
    lineChart: lineChart, barChart: barChart, drawn: drawn, palette: PALETTE, figure: figure,
  };
})();
