// Campaign dashboards: Chart.js charts fed by json_script data, and the item upload's progress bar.
(function () {
  "use strict";

  const LEVEL_COLORS = { good: "#2f9e44", tentative: "#f08c00", low: "#e03131", none: "#adb5bd" };
  const BAR = "#4c6ef5";
  const FONT = 'system-ui, -apple-system, "Segoe UI", Roboto, sans-serif';

  function level(alpha, thresholds) {
    if (alpha === null || alpha === undefined) return "none";
    return alpha >= thresholds[1] ? "good" : alpha >= thresholds[0] ? "tentative" : "low";
  }

  function short(label, max) {
    return label.length > max ? label.slice(0, max - 1) + "…" : label;
  }

  // Dashed vertical lines at the alpha thresholds, and "undefined" where a row has no alpha.
  function referenceLines(values, rows) {
    return {
      id: "referenceLines",
      afterDatasetsDraw(chart) {
        const { ctx, chartArea, scales } = chart;
        ctx.save();
        ctx.font = "11px " + FONT;
        values.forEach((value, i) => {
          const x = scales.x.getPixelForValue(value);
          ctx.strokeStyle = i ? LEVEL_COLORS.good : LEVEL_COLORS.tentative;
          ctx.fillStyle = ctx.strokeStyle;
          ctx.setLineDash([4, 3]);
          ctx.lineWidth = 1.5;
          ctx.beginPath();
          ctx.moveTo(x, chartArea.top);
          ctx.lineTo(x, chartArea.bottom);
          ctx.stroke();
          // The lower line's label sits left of its line, the upper one's right: they never overlap.
          ctx.textAlign = i ? "left" : "right";
          ctx.fillText(String(value), x + (i ? 3 : -3), chartArea.top - 5);
        });
        ctx.setLineDash([]);
        ctx.fillStyle = "#868e96";
        ctx.textAlign = "left";
        ctx.textBaseline = "middle";
        rows.forEach((row, i) => {
          if (row.alpha === null) {
            ctx.fillText("— undefined", scales.x.getPixelForValue(0) + 4, scales.y.getPixelForValue(i));
          }
        });
        ctx.restore();
      },
    };
  }

  function alphaChart(canvas, rows, thresholds) {
    const values = rows.map((r) => r.alpha).filter((a) => a !== null);
    const low = Math.min(0, ...values);
    canvas.parentElement.style.height = rows.length * 26 + 50 + "px";
    const narrow = canvas.parentElement.clientWidth < 420;
    return new Chart(canvas, {
      type: "bar",
      data: {
        labels: rows.map((r) => r.label),
        datasets: [{
          data: rows.map((r) => r.alpha),
          backgroundColor: rows.map((r) => LEVEL_COLORS[level(r.alpha, thresholds)]),
          borderRadius: 3,
          barPercentage: 0.8,
          categoryPercentage: 0.9,
        }],
      },
      options: {
        indexAxis: "y",
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        layout: { padding: { top: 14, right: 6 } },
        scales: {
          x: {
            min: Math.max(-1, Math.floor(low * 5) / 5), max: 1,
            ticks: { stepSize: 0.2, font: { family: FONT }, callback: (value) => (Math.abs(value) < 1e-9 ? "0" : value.toFixed(1)) },
          },
          y: { ticks: { autoSkip: false, font: { family: FONT }, callback(value) { return short(this.getLabelForValue(value), narrow ? 16 : 28); } } },
        },
        plugins: {
          legend: { display: false },
          tooltip: { callbacks: { title: (items) => rows[items[0].dataIndex].label, label: (item) => rows[item.dataIndex].why } },
        },
      },
      plugins: [referenceLines(thresholds, rows)],
    });
  }

  function perDayChart(canvas, days) {
    return new Chart(canvas, {
      type: "bar",
      data: {
        labels: days.map((d) => d.day.slice(5)),
        datasets: [{ label: "judgments", data: days.map((d) => d.n), backgroundColor: BAR, borderRadius: 2, maxBarThickness: 28 }],
      },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        scales: {
          x: { grid: { display: false }, ticks: { maxRotation: 0, autoSkipPadding: 8, font: { family: FONT } } },
          y: { beginAtZero: true, ticks: { precision: 0, font: { family: FONT } } },
        },
        plugins: {
          legend: { display: false },
          tooltip: { callbacks: { title: (items) => days[items[0].dataIndex].day } },
        },
      },
    });
  }

  function initCharts(root) {
    if (typeof Chart === "undefined" || !root.querySelectorAll) return;
    root.querySelectorAll("canvas[data-chart]").forEach((canvas) => {
      if (Chart.getChart(canvas)) return;
      const source = document.getElementById(canvas.dataset.source);
      if (!source) return;
      const data = JSON.parse(source.textContent);
      const kind = canvas.dataset.chart;
      if (kind === "per_day") perDayChart(canvas, data.per_day || []);
      else alphaChart(canvas, data[kind] || [], data.thresholds || [0.667, 0.8]);
    });
  }

  document.addEventListener("DOMContentLoaded", () => initCharts(document));
  document.addEventListener("htmx:load", (event) => initCharts(event.detail.elt));

  // The upload's <progress>: driven by the XHR's upload progress, then marked done or failed.
  function upload(event) {
    const form = event.target.closest && event.target.closest("[data-upload-progress]");
    if (!form) return null;
    const bar = document.getElementById(form.dataset.uploadProgress);
    const box = bar.closest(".upload-status");
    return { form, bar, box, label: box.querySelector("[data-upload-label]") };
  }

  document.addEventListener("htmx:beforeSend", (event) => {
    const u = upload(event);
    if (!u) return;
    u.bar.value = 0;
    u.box.hidden = false;
    u.box.classList.remove("done", "failed");
    u.label.textContent = "Uploading… 0%";
  });

  document.addEventListener("htmx:xhr:progress", (event) => {
    const u = upload(event);
    if (!u || !event.detail.lengthComputable || !event.detail.total) return;
    const pct = Math.round((100 * event.detail.loaded) / event.detail.total);
    if (pct < u.bar.value) return; // the response's own download progress follows the upload
    u.bar.value = pct;
    u.label.textContent = pct < 100 ? `Uploading… ${pct}%` : "Uploaded; importing…";
  });

  document.addEventListener("htmx:afterRequest", (event) => {
    const u = upload(event);
    if (!u) return;
    const status = event.detail.xhr ? event.detail.xhr.status : 0;
    if (status >= 200 && status < 300) {
      u.bar.value = u.bar.max;
      u.box.classList.add("done");
      // 202: a large file handed to an import job; its own bar (below the form) follows the import.
      u.label.textContent = status === 202 ? "Uploaded; importing in the background" : "Imported";
      u.form.reset();
    } else {
      u.box.classList.add("failed");
      u.label.textContent = status ? "Import failed: see the message at the top" : "Upload failed: the connection dropped";
    }
  });
})();
