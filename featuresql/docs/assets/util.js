/* featuresql docs: shared helpers (DOM building, formatting). Every script adds to window.FSQL. */
"use strict";
window.FSQL = window.FSQL || {};

(function (F) {
  const SVG_NS = "http://www.w3.org/2000/svg";

  /* An element with properties and children; text is always inserted as text, never as HTML. */
  F.el = function (tag, props, ...children) {
    const node = document.createElement(tag);
    setProps(node, props);
    append(node, children);
    return node;
  };

  /* An SVG element with attributes and children. */
  F.svg = function (tag, attrs, ...children) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value == null) continue;
      if (key === "text") node.textContent = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value);
    }
    append(node, children);
    return node;
  };

  function setProps(node, props) {
    for (const [key, value] of Object.entries(props || {})) {
      if (value == null || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key === "markdown") { node.innerHTML = F.markdown(value); node.classList.add("markdown"); }
      else if (key === "dataset") Object.assign(node.dataset, value);
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : value);
    }
  }

  function append(node, children) {
    for (const child of children.flat(Infinity)) {
      if (child == null || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
  }

  F.escape = function (text) {
    return String(text).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
  };

  /* "2026-06-30T00:00:00Z" -> "2026-06-30 00:00 UTC". */
  F.time = function (iso) {
    if (!iso) return "";
    const text = String(iso).replace("T", " ").replace(/(\.\d+)?(Z|[+-]00:00)$/, "");
    return text.replace(/:00$/, "") + " UTC";
  };

  /* How long ago an ISO time was, from the viewer's clock: "3 days ago". */
  F.ago = function (iso) {
    const then = Date.parse(iso);
    if (!iso || Number.isNaN(then)) return "";
    const seconds = Math.round((Date.now() - then) / 1000);
    const units = [["day", 86400], ["hour", 3600], ["minute", 60]];
    for (const [name, size] of units) {
      const count = Math.floor(Math.abs(seconds) / size);
      if (count >= 1) return seconds >= 0 ? `${count} ${name}${count > 1 ? "s" : ""} ago` : `in ${count} ${name}${count > 1 ? "s" : ""}`;
    }
    return "just now";
  };

  F.number = function (value) {
    return value == null ? "" : Number(value).toLocaleString("en-US");
  };

  F.badge = function (text, kind, title) {
    return F.el("span", { class: `badge ${kind || ""}`, title: title || null, text });
  };

  /* The badge of a test's last result. */
  F.resultBadge = function (last) {
    if (!last) return F.badge("not run", "", "no result in target/test_results.json: run featuresql test");
    const failures = last.failures ? ` (${F.number(last.failures)})` : "";
    return F.badge(`${last.status}${failures}`, last.status, last.message || null);
  };

  F.runBadge = function (run) {
    if (!run) return F.badge("never run", "", "no run of this model in the target's run log");
    return F.badge(run.status, run.status, run.message || null);
  };

  F.section = function (title, props, ...children) {
    return F.el("section", Object.assign({ class: "card" }, props || {}), F.el("h2", { text: title }), ...children);
  };

  /* A definition list of [label, value] pairs; pairs with an empty value are left out. */
  F.props = function (pairs) {
    const list = F.el("dl", { class: "props" });
    for (const [label, value] of pairs) {
      if (value == null || value === "" || (Array.isArray(value) && !value.length)) continue;
      list.append(F.el("dt", { text: label }), F.el("dd", null, value));
    }
    return list;
  };

  /* A table in a wrapper that scrolls sideways if the table cannot fit (the page itself never does). */
  F.table = function (headers, rows, props) {
    return F.el("div", { class: "table-wrap" }, F.el("table", props || null,
      F.el("thead", null, F.el("tr", null, headers.map((h) => F.el("th", { text: h })))),
      F.el("tbody", null, rows)));
  };

  /* A code block with a copy button (the clipboard may be unavailable from file://: then nothing happens). */
  F.code = function (text, props) {
    const button = F.el("button", { class: "copy", type: "button", text: "copy" });
    button.addEventListener("click", () => {
      if (!navigator.clipboard) return;
      navigator.clipboard.writeText(text).then(() => { button.textContent = "copied"; }, () => {});
    });
    const wrapper = F.el("div", props || null, button, F.el("pre", null, F.el("code", { text })));
    wrapper.classList.add("code-block");
    return wrapper;
  };

  /* A name that may wrap after its underscores (<wbr>), never inside a word; its text is unchanged. */
  F.breakable = function (name) {
    return String(name).split(/(?<=_)/).map((part, i) => (i ? [F.el("wbr"), part] : part));
  };

  F.link = function (href, text, props) {
    return F.el("a", Object.assign({ href, text }, props || {}));
  };

  /* Every model: those with a table (catalog.models), then the on-demand ones (catalog.on_demand), computed per request. */
  F.allModels = (catalog) => [...Object.values(catalog.models), ...Object.values(catalog.on_demand || {})];
  F.findModel = (catalog, name) => catalog.models[name] || (catalog.on_demand || {})[name];
  F.ON_DEMAND = "on_demand";
  /* A model's kind as the site writes it ("on demand"); its badge and dot take the kind itself as their class. */
  F.kindLabel = (kind) => (kind === F.ON_DEMAND ? "on demand" : kind);
  F.kindBadge = (kind) => F.badge(F.kindLabel(kind), kind);

  F.modelHref = (name) => `#/model/${encodeURIComponent(name)}`;
  F.featureHref = (model, column) => `#/model/${encodeURIComponent(model)}/${encodeURIComponent(column)}`;
  F.serviceHref = (name) => `#/service/${encodeURIComponent(name)}`;
  F.sourceHref = (key, column) => `#/source/${encodeURIComponent(key)}${column ? "/" + encodeURIComponent(column) : ""}`;

  /* A lineage node ("source:bank.transactions.amount", "model:m.c", "online:m.c", "request:m.c") as a link to its page. */
  F.nodeLink = function (node) {
    const kind = node.slice(0, node.indexOf(":"));
    const rest = node.slice(kind.length + 1);
    const dot = rest.lastIndexOf(".");
    const owner = rest.slice(0, dot), column = rest.slice(dot + 1);
    if (kind === "model") return F.link(F.featureHref(owner, column), rest, { class: "mono" });
    if (kind === "source") return F.link(F.sourceHref(owner, column), rest, { class: "mono" });
    if (kind === "online") return F.el("span", null, F.badge("online", "online"), " ", F.el("code", { text: `${owner}__${column}` }));
    if (kind === "request") return F.el("span", null, F.badge("request", "request"), " ", F.link(F.modelHref(owner), rest, { class: "mono" }));
    return F.el("span", { class: "mono", text: rest });
  };
})(window.FSQL);
