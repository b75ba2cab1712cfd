// Training pages: live job curves (appended from the polled fragment), the log tail, compare and model
// charts, the launch form's per-kind settings, and the job list's compare button.
(function () {
  "use strict";

  const FONT = 'system-ui, -apple-system, "Segoe UI", Roboto, sans-serif';
  const PALETTE = ["#3b5bdb", "#e8590c", "#2b8a3e", "#ae3ec9", "#0c8599", "#c92a2a", "#5c940d", "#495057"];
  const SPLIT_COLORS = { train: "#3b5bdb", eval: "#e8590c" };

  function readJSON(id) {
    const node = document.getElementById(id);
    return node ? JSON.parse(node.textContent) : null;
  }

  function points(pairs) {
    return (pairs || []).filter((p) => Array.isArray(p) && typeof p[1] === "number").map((p) => ({ x: p[0], y: p[1] }));
  }

  // 2e-5 rather than 0.0000200000; 0.65 rather than 0.6500000001.
  function tick(value) {
    return value !== 0 && Math.abs(value) < 1e-3 ? Number(value.toPrecision(3)).toExponential() : String(+value.toFixed(4));
  }

  function lineOptions(yTitle, extra) {
    return Object.assign({
      responsive: true,
      maintainAspectRatio: false,
      animation: false,
      parsing: false,
      normalized: true,
      interaction: { mode: "nearest", intersect: false },
      scales: {
        x: { type: "linear", title: { display: true, text: "step", font: { family: FONT } }, ticks: { precision: 0, font: { family: FONT } } },
        y: { title: { display: !!yTitle, text: yTitle, font: { family: FONT } }, ticks: { font: { family: FONT }, callback: tick } },
      },
      plugins: { legend: { labels: { boxWidth: 12, font: { family: FONT } } } },
    }, extra || {});
  }

  // --- the live job page ----------------------------------------------------------------------------

  // Loss and accuracy curves, and the learning rate; the other series (throughput, score spread) stay in the API.
  function groupOf(metric) {
    if (/loss/i.test(metric)) return "loss";
    if (/acc/i.test(metric)) return "accuracy";
    if (metric === "lr") return "lr";
    return null;
  }

  function datasetFor(chart, split, metric) {
    const key = split + "/" + metric;
    let ds = chart.data.datasets.find((d) => d.key === key);
    if (!ds) {
      const isEval = split !== "train";
      const color = chart.data.datasets.length < 2 && SPLIT_COLORS[split] ? SPLIT_COLORS[split]
        : PALETTE[chart.data.datasets.length % PALETTE.length];
      ds = {
        key, label: `${split} ${metric}`, data: [], borderColor: color, backgroundColor: color,
        borderWidth: isEval ? 1.5 : 2, pointRadius: isEval ? 3.5 : 0, pointHoverRadius: 4, tension: 0,
        borderDash: isEval ? [5, 4] : [],
      };
      chart.data.datasets.push(ds);
    }
    return ds;
  }

  function jobCharts() {
    const out = {};
    document.querySelectorAll("canvas[data-job-chart]").forEach((canvas) => {
      const accuracy = canvas.dataset.jobChart === "accuracy";
      out[canvas.dataset.jobChart] = Chart.getChart(canvas) || new Chart(canvas, {
        type: "line", data: { datasets: [] }, options: lineOptions(accuracy ? "pair accuracy" : ""),
      });
      if (accuracy) out.accuracy.options.scales.y.max = 1; // a share: the axis never needs to pass 1
    });
    return out;
  }

  function addSeries(series) {
    if (typeof Chart === "undefined" || !series) return;
    const charts = jobCharts();
    let added = 0;
    Object.entries(series).forEach(([split, metrics]) => {
      Object.entries(metrics).forEach(([metric, pairs]) => {
        const chart = charts[groupOf(metric)];
        if (!chart) return;
        const ds = datasetFor(chart, split, metric);
        const fresh = points(pairs);
        ds.data.push(...fresh);
        added += fresh.length;
      });
    });
    Object.values(charts).forEach((chart) => {
      const n = chart.data.datasets.reduce((sum, ds) => sum + ds.data.length, 0);
      chart.canvas.dataset.points = String(n);
      const fig = chart.canvas.closest("[data-chart-optional]");
      if (fig && n) fig.hidden = false;
      chart.update("none");
    });
    const empty = document.querySelector("[data-chart-empty]");
    if (empty && added) empty.hidden = true;
  }

  function initJobPage() {
    const data = readJSON("job-series");
    if (data) addSeries(data.series);
  }

  // The polled fragment carries the metric points after the page's cursor: append them.
  function onFragment(elt) {
    const delta = elt.querySelector && elt.querySelector("#metric-delta");
    if (delta) addSeries(JSON.parse(delta.textContent));
  }

  // The log box keeps to the bottom while the reader is there.
  function logBox() { return document.querySelector("[data-log-box]"); }
  function atBottom(box) { return box.scrollHeight - box.scrollTop - box.clientHeight < 24; }
  let stickToBottom = true;
  document.addEventListener("scroll", (event) => {
    if (event.target === logBox()) stickToBottom = atBottom(event.target);
  }, true);
  function followLogs() {
    const box = logBox();
    if (!box) return;
    const lines = box.querySelectorAll(".log-line");
    for (let i = 0; i < lines.length - 2000; i++) lines[i].remove(); // a long job's page stays light
    if (stickToBottom) box.scrollTop = box.scrollHeight;
  }

  // --- compare page ---------------------------------------------------------------------------------

  function initCompare() {
    const data = readJSON("compare-data");
    if (!data) return;
    document.querySelectorAll("canvas[data-compare-chart]").forEach((canvas) => {
      if (Chart.getChart(canvas)) return;
      const [split, metric] = canvas.dataset.compareChart.split(".");
      const datasets = data.jobs.map((job, i) => {
        const color = PALETTE[i % PALETTE.length];
        const pts = points(((job.series || {})[split] || {})[metric]);
        return { label: job.label, data: pts, borderColor: color, backgroundColor: color, borderWidth: 2,
                 pointRadius: split === "eval" ? 3 : 0, tension: 0 };
      });
      const chart = new Chart(canvas, { type: "line", data: { datasets }, options: lineOptions(metric) });
      if (/acc/.test(metric)) { chart.options.scales.y.max = 1; chart.update("none"); }
      canvas.dataset.points = String(datasets.reduce((s, d) => s + d.data.length, 0));
    });
    const toggle = document.querySelector("[data-only-diffs]");
    if (toggle) toggle.addEventListener("change", () => {
      document.querySelector(".config-diff").classList.toggle("only-diffs", toggle.checked);
    });
  }

  // --- model page -----------------------------------------------------------------------------------

  function initModel() {
    const data = readJSON("model-data");
    if (!data) return;
    const calibration = document.querySelector('canvas[data-model-chart="calibration"]');
    if (calibration && data.calibration && data.calibration.bins.length && !Chart.getChart(calibration)) {
      const bins = data.calibration.bins;
      const maxCount = Math.max(1, ...bins.map((b) => b.count));
      // The trainer bins a pair's confidence max(p, 1 - p): [0.5, 1] then, unless a scorer reports all of [0, 1].
      const low = bins.every((b) => b.mean_predicted >= 0.5) ? 0.5 : 0;
      new Chart(calibration, {
        type: "scatter",
        data: {
          datasets: [
            { label: "observed", data: bins.map((b) => ({ x: b.mean_predicted, y: b.accuracy, count: b.count })),
              backgroundColor: "#3b5bdb", borderColor: "#3b5bdb", showLine: true, borderWidth: 1.5,
              pointRadius: bins.map((b) => 3 + 5 * Math.sqrt(b.count / maxCount)) },
            { label: "perfect calibration", data: [{ x: low, y: low }, { x: 1, y: 1 }], showLine: true, pointRadius: 0,
              borderColor: "#adb5bd", borderDash: [5, 4], borderWidth: 1.5 },
          ],
        },
        options: {
          responsive: true, maintainAspectRatio: false, animation: false,
          scales: {
            x: { min: low, max: 1, title: { display: true, text: "confidence (predicted probability)", font: { family: FONT } } },
            y: { min: 0, max: 1, title: { display: true, text: "observed accuracy", font: { family: FONT } } },
          },
          plugins: {
            legend: { labels: { boxWidth: 12, font: { family: FONT } } },
            tooltip: { callbacks: { label: (item) => item.datasetIndex ? "" :
              `predicted ${item.raw.x.toFixed(3)} · observed ${item.raw.y.toFixed(3)} · ${item.raw.count} pairs` } },
          },
        },
      });
    }
    const dist = document.querySelector('canvas[data-model-chart="distributions"]');
    const d = data.distributions;
    if (dist && d && !Chart.getChart(dist)) {
      const labels = d.edges.slice(0, -1).map((left, i) => ((left + d.edges[i + 1]) / 2).toFixed(2));
      const side = (name, color) => ({ label: name, data: (d[name] && d[name].hist) || [], backgroundColor: color,
                                       barPercentage: 1, categoryPercentage: 0.9 });
      new Chart(dist, {
        type: "bar",
        data: { labels, datasets: [side("harmful", "rgba(224, 49, 49, .7)"), side("safe", "rgba(47, 158, 68, .7)")] },
        options: {
          responsive: true, maintainAspectRatio: false, animation: false,
          scales: {
            x: { title: { display: true, text: "score", font: { family: FONT } }, ticks: { maxRotation: 0, autoSkipPadding: 8 } },
            y: { beginAtZero: true, title: { display: true, text: "replies", font: { family: FONT } }, ticks: { precision: 0 } },
          },
          plugins: { legend: { labels: { boxWidth: 12, font: { family: FONT } } } },
        },
      });
    }
  }

  // --- launch form ----------------------------------------------------------------------------------

  function initLaunchForm() {
    const form = document.getElementById("launch-form");
    if (!form) return;
    const defaults = readJSON("kind-defaults") || {};
    const edited = new Set();
    form.addEventListener("input", (event) => {
      const field = event.target.closest("[data-setting]");
      if (field) edited.add(field.dataset.setting);
    });
    function apply(kind, fill) {
      form.querySelectorAll("[data-only-kind]").forEach((field) => { field.hidden = field.dataset.onlyKind !== kind; });
      if (!fill || !defaults[kind]) return;
      Object.entries(defaults[kind]).forEach(([name, value]) => {
        if (edited.has(name)) return; // the person's own value stays
        const input = form.elements[name];
        if (!input || input.type === "hidden") return;
        if (input.type === "checkbox") input.checked = !!value;
        else input.value = value;
      });
    }
    const checked = form.querySelector("input[name=kind]:checked");
    apply(checked ? checked.value : "reward_model", false);
    form.addEventListener("change", (event) => {
      if (event.target.name === "kind") apply(event.target.value, true);
    });
  }

  // --- job list -------------------------------------------------------------------------------------

  function updateCompare() {
    const form = document.querySelector("[data-compare-form]");
    if (!form) return;
    const n = form.querySelectorAll("input[name=jobs]:checked").length;
    const button = form.querySelector("[data-compare-button]");
    button.disabled = n < 2;
    button.textContent = n ? `Compare ${n} selected` : "Compare selected";
  }
  document.addEventListener("change", (event) => {
    if (event.target.name === "jobs") updateCompare();
  });

  // The live table's poll skips its turn while jobs are ticked for comparing (a swap would untick them).
  // Here rather than an hx-trigger filter: htmx evaluates those as code, which the CSP forbids.
  document.addEventListener("htmx:beforeRequest", (event) => {
    const elt = event.detail.elt;
    if (elt.matches && elt.matches("[data-poll-unless-checked]") && elt.querySelector("input:checked")) {
      event.preventDefault();
    }
  });

  // --- wiring ---------------------------------------------------------------------------------------

  document.addEventListener("DOMContentLoaded", () => {
    if (typeof Chart !== "undefined") {
      initJobPage();
      initCompare();
      initModel();
    }
    initLaunchForm();
    updateCompare();
    followLogs();
  });
  document.addEventListener("htmx:load", (event) => {
    onFragment(event.detail.elt);
    updateCompare();
  });
  document.addEventListener("htmx:afterSettle", followLogs);
})();
