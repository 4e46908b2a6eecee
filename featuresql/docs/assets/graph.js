/* featuresql docs: the lineage graph, drawn as SVG with no library.
 *
 * Boxes are relations laid out left to right in layers: sources (and hand-written
 * tables), then models by depth, then the online store's view of each online model.
 * An on-demand model is a box after the models it reads, fed also by a box of its
 * request columns ("request:<model>.<column>", beside the sources: the request is an input too).
 * Each box lists its columns; a column is a node of the catalog's column lineage
 * ("source:bank.transactions.amount", "model:user_transactions.amount_sum_7d") and
 * each online feature a node "online:<model>.<column>" fed by its model column.
 * Focusing a column highlights its upstream path to the source columns (orange) and
 * what it feeds downstream up to online features (purple, dashed).
 *
 * A layer is as wide as its longest name needs (from BOX_W up to MAX_BOX_W); a name
 * still too long is elided in the middle, keeping its end (amount_sum_1d and
 * amount_sum_30d differ only there), and a box whose labels would then look alike
 * is widened to show them whole. */
"use strict";
window.FSQL = window.FSQL || {};

(function (F) {
  const BOX_W = 236, MAX_BOX_W = 420, GAP_X = 120, ROW_H = 18, HEAD_H = 28, GAP_Y = 22, PAD = 18;
  const COL_X = 12, COL_PAD = COL_X + 10, TITLE_X = 10;  // text insets inside a box
  // The fonts of the labels, as style.css sets them (measured to size the boxes).
  const COL_FONT = "11.5px ui-monospace, Menlo, Consolas, monospace";
  const TITLE_FONT = '600 12.5px -apple-system, BlinkMacSystemFont, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif';
  const KIND_FONT = '10.5px -apple-system, BlinkMacSystemFont, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif';
  const KIND_LABELS = { source: "source", model: "model", on_demand: "on demand", request: "request", online: "online features", table: "table" };

  /* The graph's boxes, columns and edges, built once from the catalog. */
  F.lineageModel = function (catalog) {
    if (F._lineage) return F._lineage;
    const edges = {};
    for (const [node, upstream] of Object.entries(catalog.lineage.edges)) edges[node] = upstream.slice();
    const boxes = new Map();
    const addBox = (id, kind, label, columns, href) => {
      boxes.set(id, { id, kind, label, columns: [...new Set(columns)], href, deps: new Set() });
    };
    for (const source of Object.values(catalog.sources)) {
      addBox(`source:${source.key}`, "source", source.key, source.columns.map((c) => c.name), F.sourceHref(source.key));
    }
    for (const model of F.allModels(catalog)) {
      const onDemand = model.kind === F.ON_DEMAND;
      addBox(`model:${model.name}`, onDemand ? F.ON_DEMAND : "model", model.name, model.columns.map((c) => c.name), F.modelHref(model.name));
      if (onDemand) addBox(`request:${model.name}`, "request", model.name, model.request.map((c) => c.name), F.modelHref(model.name));
      if (model.online) {
        const features = model.columns.filter((c) => c.role === "feature").map((c) => c.name);
        addBox(`online:${model.name}`, "online", model.name, features, F.modelHref(model.name));
        for (const column of features) edges[`online:${model.name}.${column}`] = [`model:${model.name}.${column}`];
      }
    }
    for (const node of Object.keys(edges)) {  // lineage columns a box does not list yet (tables, undeclared columns)
      const { box, column } = split(node);
      if (!boxes.has(box)) addBox(box, "table", box.slice(box.indexOf(":") + 1), [], null);
      if (!boxes.get(box).columns.includes(column)) boxes.get(box).columns.push(column);
    }
    const downstream = {};
    for (const [node, upstream] of Object.entries(edges)) {
      for (const parent of upstream) {
        (downstream[parent] = downstream[parent] || []).push(node);
        const from = split(parent).box, to = split(node).box;
        if (from !== to && boxes.has(from) && boxes.has(to)) boxes.get(to).deps.add(from);
      }
    }
    for (const model of F.allModels(catalog)) {
      const box = boxes.get(`model:${model.name}`);
      model.depends_on.forEach((name) => box.deps.add(`model:${name}`));
      (model.sources || []).forEach((key) => box.deps.add(`source:${key}`));
      if (model.kind === F.ON_DEMAND) box.deps.add(`request:${model.name}`);
      if (model.online) boxes.get(`online:${model.name}`).deps.add(box.id);
    }
    F._lineage = { boxes, edges, downstream };
    return F._lineage;
  };

  function split(node) {
    const dot = node.lastIndexOf(".");
    return { box: node.slice(0, dot), column: node.slice(dot + 1) };
  }

  /* Every node reached from `start` through `links` (not `start` itself). */
  F.reach = function (links, start) {
    const found = new Set();
    const pending = [...(links[start] || [])];
    while (pending.length) {
      const node = pending.pop();
      if (found.has(node)) continue;
      found.add(node);
      pending.push(...(links[node] || []));
    }
    return found;
  };

  /* Layers (depth from the sources) and the order of boxes in each, by barycentre of their inputs. */
  function layout(graph) {
    const depth = new Map();
    const depthOf = (id, seen = new Set()) => {
      if (depth.has(id)) return depth.get(id);
      const box = graph.boxes.get(id);
      if (seen.has(id) || !box.deps.size) { depth.set(id, 0); return 0; }
      seen.add(id);
      const value = 1 + Math.max(...[...box.deps].filter((d) => graph.boxes.has(d)).map((d) => depthOf(d, seen)), -1);
      depth.set(id, value);
      return value;
    };
    graph.boxes.forEach((_, id) => depthOf(id));
    const last = Math.max(0, ...[...graph.boxes.values()].filter((b) => b.kind !== "online").map((b) => depth.get(b.id)));
    graph.boxes.forEach((box) => { if (box.kind === "online") depth.set(box.id, last + 1); });
    const layers = [];
    graph.boxes.forEach((box) => { (layers[depth.get(box.id)] = layers[depth.get(box.id)] || []).push(box); });
    const ordered = layers.filter(Boolean).map((layer) => layer.sort((a, b) => a.label.localeCompare(b.label)));
    const lefts = [];
    ordered.reduce((x, layer) => { lefts.push(x); return x + sizeLayer(layer) + GAP_X; }, PAD);
    const place = () => ordered.forEach((layer, index) => {
      let y = PAD;
      for (const box of layer) {
        box.x = lefts[index];
        box.y = y;
        box.height = HEAD_H + box.columns.length * ROW_H + 6;
        y += box.height + GAP_Y;
      }
    });
    place();
    for (let pass = 0; pass < 2; pass += 1) {  // sort each layer by the mean height of the boxes it reads
      for (const layer of ordered.slice(1)) {
        const centre = (box) => {
          const inputs = [...box.deps].map((d) => graph.boxes.get(d)).filter(Boolean);
          return inputs.length ? inputs.reduce((s, b) => s + b.y + b.height / 2, 0) / inputs.length : box.y;
        };
        const keys = new Map(layer.map((box) => [box, centre(box)]));
        layer.sort((a, b) => keys.get(a) - keys.get(b));
        place();
      }
    }
    const width = PAD + Math.max(...ordered.map((layer, index) => lefts[index] + layer[0].width));
    const height = PAD + Math.max(...ordered.map((layer) => layer.reduce((s, b) => s + b.height + GAP_Y, 0)));
    return { width, height };
  }

  /* Size the boxes of a layer to one width and fit their labels to it; returns the width. */
  function sizeLayer(layer) {
    const wanted = Math.max(...layer.map((box) => Math.min(MAX_BOX_W, Math.max(BOX_W, neededWidth(box)))));
    layer.forEach((box) => fitLabels(box, wanted));
    const width = Math.max(...layer.map((box) => box.width));
    layer.forEach((box) => { box.width = width; });
    return width;
  }

  /* The width that shows the box's title and every column name whole. */
  function neededWidth(box) {
    const title = TITLE_X + textWidth(box.label, TITLE_FONT) + 24 + textWidth(KIND_LABELS[box.kind], KIND_FONT);
    return Math.ceil(Math.max(title, ...box.columns.map((c) => textWidth(c, COL_FONT) + COL_PAD)));
  }

  /* box.labels (one per column) and box.title at `width`; wider when elision would make two labels alike. */
  function fitLabels(box, width) {
    const labels = box.columns.map((c) => elide(c, COL_FONT, width - COL_PAD));
    if (new Set(labels).size < labels.length) return fitLabels(box, neededWidth(box));
    box.width = width;
    box.labels = labels;
    box.title = elide(box.label, TITLE_FONT, width - TITLE_X - 24 - textWidth(KIND_LABELS[box.kind], KIND_FONT));
  }

  /* `text` shortened to `space` pixels by an ellipsis in its middle: its start and its end stay. */
  function elide(text, font, space) {
    const width = textWidth(text, font);
    if (width <= space) return text;
    const kept = Math.max(2, Math.floor((text.length * space) / width) - 1);  // characters, at their mean width
    const tail = Math.ceil(kept * 0.6);  // the end tells the windows apart (_1d, _7d, _30d)
    return text.slice(0, kept - tail) + "\u2026" + text.slice(text.length - tail);
  }

  function textWidth(text, font) {
    const context = (textWidth.canvas = textWidth.canvas || document.createElement("canvas")).getContext("2d");
    context.font = font;
    return context.measureText(text).width;
  }

  function curve(x1, y1, x2, y2) {
    const mid = (x1 + x2) / 2;
    return `M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2},${y2}`;
  }

  /* Draw the graph into `container`. focus: {node: "model:m.c"} highlights a column's path,
   * {nodes: [...]} the paths of several columns (a service's features) together;
   * {box: "model:m"} a relation's upstream and downstream boxes; onColumn(node) handles clicks. */
  F.drawLineage = function (container, catalog, focus, onColumn) {
    const graph = F.lineageModel(catalog);
    const size = layout(graph);
    const root = F.svg("svg", { width: size.width, height: size.height, viewBox: `0 0 ${size.width} ${size.height}`,
      id: "lineage-svg", role: "img", "aria-label": "Lineage graph" });
    const boxEdges = F.svg("g", { class: "edges" });
    const columnEdges = F.svg("g", { class: "col-edges" });
    root.append(boxEdges, columnEdges);
    const positions = {};
    graph.boxes.forEach((box) => {
      for (const dep of box.deps) {
        const from = graph.boxes.get(dep);
        if (from) boxEdges.append(F.svg("path", { class: "edge", d: curve(from.x + from.width, from.y + HEAD_H / 2, box.x, box.y + HEAD_H / 2) }));
      }
      root.append(drawBox(box, positions, onColumn));
    });
    const highlighted = focus ? highlight(root, graph, focus) : null;
    if (highlighted) drawColumnEdges(columnEdges, graph, highlighted, positions);
    const frame = F.el("div", { class: "graph", id: "lineage-graph" }, root);
    const zoom = zoomTools(root, size);
    container.replaceChildren(zoom.element, frame);
    if (focus) requestAnimationFrame(() => showFocus(frame, root, graph, focus, zoom));
    return highlighted;
  };

  function drawBox(box, positions, onColumn) {
    const group = F.svg("g", { class: `box ${box.kind}`, "data-box": box.id, transform: `translate(${box.x},${box.y})` });
    group.append(
      F.svg("rect", { class: "box-bg", width: box.width, height: box.height, rx: 6 }),
      F.svg("rect", { class: "box-head", width: box.width, height: HEAD_H - 4, rx: 6 }),
      F.svg("text", { class: "box-title", x: TITLE_X, y: 17, text: box.title,
        onclick: () => { if (box.href) location.hash = box.href; } }, F.svg("title", { text: box.label })),
      F.svg("text", { class: "box-kind", x: box.width - 8, y: 16, "text-anchor": "end", text: KIND_LABELS[box.kind] }),
    );
    box.columns.forEach((column, index) => {
      const node = `${box.id}.${column}`;
      const y = HEAD_H + index * ROW_H;
      positions[node] = { x: box.x, right: box.x + box.width, y: box.y + y + ROW_H / 2 };
      group.append(F.svg("g", { class: "col", "data-node": node, transform: `translate(0,${y})`,
        onclick: () => onColumn && onColumn(node) },
        F.svg("rect", { class: "col-bg", x: 2, width: box.width - 4, height: ROW_H, rx: 3 }),
        F.svg("text", { x: COL_X, y: 13, text: box.labels[index] }),
        F.svg("title", { text: node })));
    });
    return group;
  }

  /* Mark the focused paths; returns {up, down, focus} (sets of nodes) for column edges and lists. */
  function highlight(root, graph, focus) {
    root.classList.add("dimmed");
    if (focus.box) {
      const boxes = new Set([focus.box]);
      const upBoxes = (id) => (graph.boxes.get(id) ? [...graph.boxes.get(id).deps] : []);
      const downBoxes = (id) => [...graph.boxes.values()].filter((b) => b.deps.has(id)).map((b) => b.id);
      for (const walk of [upBoxes, downBoxes]) {
        const pending = [focus.box];
        while (pending.length) walk(pending.pop()).forEach((id) => { if (!boxes.has(id)) { boxes.add(id); pending.push(id); } });
      }
      root.querySelectorAll(".box").forEach((g) => g.classList.toggle("hl-box", boxes.has(g.dataset.box)));
      return null;
    }
    const nodes = new Set(focus.nodes || [focus.node]);
    const union = (links) => new Set([...nodes].flatMap((node) => [...F.reach(links, node)]));
    const up = union(graph.edges), down = union(graph.downstream);
    root.querySelectorAll(".col").forEach((g) => {
      const node = g.dataset.node;
      g.classList.toggle("focus", nodes.has(node));
      g.classList.toggle("hl", nodes.has(node) || up.has(node));
      g.classList.toggle("hl-down", down.has(node) && !nodes.has(node));
    });
    const touched = new Set([...nodes, ...up, ...down].map((n) => split(n).box));
    root.querySelectorAll(".box").forEach((g) => g.classList.toggle("hl-box", touched.has(g.dataset.box)));
    return { up, down, focus: nodes };
  }

  function drawColumnEdges(layer, graph, highlighted, positions) {
    const draw = (from, to, kind) => {
      const a = positions[from], b = positions[to];
      if (a && b) layer.append(F.svg("path", { class: `col-edge ${kind}`, d: curve(a.right - 2, a.y, b.x + 2, b.y) }));
    };
    for (const node of new Set([...highlighted.focus, ...highlighted.up])) {
      (graph.edges[node] || []).forEach((parent) => draw(parent, node, "hl"));
    }
    for (const node of highlighted.down) {
      (graph.edges[node] || []).forEach((parent) => {
        if (highlighted.focus.has(parent) || highlighted.down.has(parent)) draw(parent, node, "hl-down");
      });
    }
  }

  /* The zoom buttons; `zoom.set(scale)` zooms from code too. */
  function zoomTools(root, size) {
    const zoom = { scale: 1 };
    zoom.set = (scale) => {
      zoom.scale = Math.min(3, Math.max(0.3, scale));
      root.setAttribute("width", size.width * zoom.scale);
      root.setAttribute("height", size.height * zoom.scale);
    };
    const button = (text, title, change) => F.el("button", { type: "button", text, title, onclick: () => zoom.set(change(zoom.scale)) });
    zoom.element = F.el("div", { class: "graph-tools" },
      button("\u2212", "Zoom out", (s) => s / 1.25), button("+", "Zoom in", (s) => s * 1.25), button("1:1", "Actual size", () => 1),
      F.el("span", { class: "legend" }, F.el("i", { style: "background: var(--up)" }), "upstream path",
        F.el("i", { style: "background: var(--down)" }), "downstream (up to online features)"),
      F.el("span", { text: "Click a column to follow its lineage." }));
    return zoom;
  }

  /* Show the focus with its whole highlighted path: zoomed out a little if that makes it fit. */
  function showFocus(frame, root, graph, focus, zoom) {
    const node = focus.nodes ? focus.nodes[0] : focus.node;
    const target = root.querySelector(node ? `[data-node="${CSS.escape(node)}"]` : `[data-box="${CSS.escape(focus.box)}"]`);
    if (!target || !frame.clientWidth) return;
    const boxes = [...root.querySelectorAll(".box.hl-box")].map((g) => graph.boxes.get(g.dataset.box)).filter(Boolean);
    const left = Math.min(...boxes.map((b) => b.x)) - PAD / 2, right = Math.max(...boxes.map((b) => b.x + b.width)) + PAD / 2;
    const fit = frame.clientWidth / (right - left);
    if (fit < 1) zoom.set(Math.max(0.7, fit));
    frame.scrollLeft = left * zoom.scale;
    const top = target.getBoundingClientRect().top - frame.getBoundingClientRect().top;
    frame.scrollTop += top - frame.clientHeight / 3;
  }
})(window.FSQL);
