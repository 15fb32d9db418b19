// The Trace page's lineage graph: runs as nodes, dependencies as edges (every one of them),
// laid out left to right by dagre, data flowing from upstream to downstream. The data comes
// from the page itself (#graph-data, written by the server); nothing is fetched.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("graph-data").textContent);
  var container = document.getElementById("graph");
  var toggle = document.getElementById("show-pointers");
  var began = performance.now();
  // longest-path ranking: a 500-run trace laid out with dagre's default (network simplex)
  // took 3.7-4.1 s here; see docs/benchmarks/2026-12-02-oversized-openlineage-lineage.md.
  var LAYOUT = { name: "dagre", rankDir: "LR", ranker: "longest-path", nodeSep: 18, rankSep: 60, animate: false };

  function pointerLines(pointers, arrow) {
    var shown = pointers.slice(0, 4).map(function (p) {
      return arrow + " " + (p.flag ? "\u2691 " : "") + p.name;
    });
    if (pointers.length > 4) shown.push(arrow + " and " + (pointers.length - 4) + " more");
    return shown;
  }

  function label(node, withPointers) {
    if (node.kind === "output") return node.name;
    var lines = [node.component + (node.stale ? "  \u26a0 stale" : ""), "run " + node.run + " \u00b7 " + node.start];
    if (withPointers) {
      lines = lines.concat(pointerLines(node.inputs, "\u2190"), pointerLines(node.outputs, "\u2192"));
    }
    return lines.join("\n");
  }

  var elements = data.nodes.map(function (node) {
    var classes = [node.kind];
    if (node.stale) classes.push("stale");
    if (node.flagged) classes.push("flagged");
    if (node.side) classes.push(node.side);
    return { group: "nodes", data: Object.assign({ label: label(node, false) }, node), classes: classes.join(" ") };
  });
  data.edges.forEach(function (edge) {
    elements.push({ group: "edges", data: { id: edge.source + "->" + edge.target, source: edge.source, target: edge.target } });
  });

  var cy = window.cytoscape({
    container: container,
    elements: elements,
    wheelSensitivity: 0.3,
    style: [
      {
        selector: "node",
        style: {
          shape: "round-rectangle",
          label: "data(label)",
          "text-wrap": "wrap",
          "text-valign": "center",
          "text-halign": "center",
          "font-size": 11,
          width: "label",
          height: "label",
          padding: 8,
          "background-color": "#f1f5f9",
          "border-width": 1,
          "border-color": "#64748b",
          color: "#0f172a",
        },
      },
      { selector: "node.root", style: { "border-width": 3, "border-color": "#0369a1" } },
      { selector: "node.downstream", style: { "background-color": "#fef9c3" } },
      { selector: "node.stale", style: { "border-color": "#b45309", "border-width": 2, "border-style": "dashed" } },
      {
        selector: "node.output",
        style: { shape: "round-tag", "background-color": "#e0f2fe", "border-color": "#0369a1", "font-weight": "bold" },
      },
      { selector: "node.flagged", style: { color: "#b91c1c" } },
      {
        selector: "edge",
        style: {
          width: 1.5,
          "curve-style": "bezier",
          "target-arrow-shape": "triangle",
          "line-color": "#94a3b8",
          "target-arrow-color": "#94a3b8",
        },
      },
    ],
    layout: LAYOUT,
  });

  cy.on("tap", "node", function (event) {
    var url = event.target.data("url");
    if (url) window.location.href = url;
  });
  if (toggle) {
    toggle.addEventListener("change", function () {
      cy.batch(function () {
        cy.nodes().forEach(function (n) {
          n.data("label", label(n.data(), toggle.checked));
        });
      });
      cy.layout(LAYOUT).run();
    });
  }
  window.mltraceGraph = cy;
  container.dataset.drawnMs = String(Math.round(performance.now() - began));
  container.dataset.nodes = String(cy.nodes().length);
  container.dataset.edges = String(cy.edges().length);
})();
