// A task's Monitor page: each metric per bucket as a line chart, and the pairs per bucket as
// bars under them, drawn by uPlot (vendored) with their cursors in step. The data comes from
// the page itself (#chart-data, written by the server); nothing is fetched.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("chart-data").textContent);
  var container = document.getElementById("charts");
  var COLOURS = ["#417690", "#ba2121", "#2f7d32", "#8a5a00", "#6a3d9a", "#00838f", "#c2185b", "#455a64"];
  var charts = [];

  function width() {
    return Math.max(320, Math.min(container.clientWidth || 900, 1100) - 8);
  }

  function options(title, label, colour, bars) {
    var series = {
      label: label,
      stroke: colour,
      width: bars ? 1 : 2,
      spanGaps: false,
      points: { show: data.t.length < 60 },
    };
    if (bars) {
      series.fill = colour + "55";
      series.paths = uPlot.paths.bars({ size: [0.7, 40] });
      series.points = { show: false };
    }
    return {
      title: title,
      width: width(),
      height: bars ? 140 : 190,
      cursor: { sync: { key: "monitor" } },
      // The buckets are UTC: so are the axis and the legend.
      tzDate: function (ts) {
        return uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC");
      },
      scales: { x: { time: true, range: [data.start, data.end] } },
      series: [{ label: "bucket (UTC)" }, series],
      axes: [{}, { size: 60 }],
    };
  }

  function draw(title, label, colour, values, bars) {
    var div = document.createElement("div");
    div.className = "chart";
    div.setAttribute("data-series", label);
    container.appendChild(div);
    charts.push(new uPlot(options(title, label, colour, bars), [data.t, values], div));
  }

  function drawAll() {
    data.metrics.forEach(function (metric, i) {
      draw(metric.name + " per " + data.bucket, metric.name, COLOURS[i % COLOURS.length], metric.values, false);
    });
    draw("pairs per " + data.bucket, "pairs", "#666666", data.pairs, true);
    window.mltraceCharts = charts;
    // The charts follow the width of the page's content (the admin's sidebar opening, say).
    new ResizeObserver(function () {
      charts.forEach(function (chart) {
        if (chart.width !== width()) chart.setSize({ width: width(), height: chart.height });
      });
    }).observe(container);
  }

  // After the layout settles (the admin's sidebar is placed by its own script): the width is right.
  if (document.readyState === "complete") drawAll();
  else window.addEventListener("load", drawAll);
})();
