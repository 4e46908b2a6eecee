/* featuresql docs: search over models, features, feature services, sources and their columns,
 * by name, description and tag ("tag:spend" keeps what carries the tag). */
"use strict";
window.FSQL = window.FSQL || {};

(function (F) {
  const TYPE_ORDER = { model: 0, service: 1, feature: 2, source: 3, column: 4 };
  const LIMIT = 60;

  function buildIndex(catalog) {
    const entries = [];
    for (const model of F.allModels(catalog)) {
      const request = (model.request || []).map((c) => c.name);  // an on-demand model's request columns
      entries.push({ type: "model", name: model.name, owner: "", description: model.description, tags: model.tags,
        extra: [model.entity, F.kindLabel(model.kind), model.owner, ...request].join(" "), href: F.modelHref(model.name) });
      for (const column of model.columns) {
        entries.push({ type: column.role === "feature" ? "feature" : "column", name: column.name, owner: model.name,
          description: column.description, tags: model.tags, extra: [column.function, column.input, column.expression].join(" "),
          href: F.featureHref(model.name, column.name) });
      }
    }
    for (const service of Object.values(catalog.services)) {
      entries.push({ type: "service", name: service.name, owner: "", description: service.description, tags: service.tags,
        extra: [service.owner, ...service.models, ...service.features.map((f) => f.output)].join(" "), href: F.serviceHref(service.name) });
    }
    for (const source of Object.values(catalog.sources)) {
      entries.push({ type: "source", name: source.key, owner: "", description: source.description, tags: [], extra: source.relation,
        href: F.sourceHref(source.key) });
      for (const column of source.columns) {
        entries.push({ type: "column", name: column.name, owner: source.key, description: column.description, tags: [],
          extra: column.type || "", href: F.sourceHref(source.key, column.name) });
      }
    }
    for (const entry of entries) {
      entry.haystack = [entry.name, entry.owner, entry.description, entry.tags.join(" "), entry.extra].join(" ").toLowerCase();
    }
    return entries;
  }

  function score(entry, words, tags) {
    if (tags.some((tag) => !entry.tags.map((t) => t.toLowerCase()).includes(tag))) return 0;
    if (!words.length) return 1;
    if (words.some((word) => !entry.haystack.includes(word))) return 0;
    const query = words.join(" "), name = entry.name.toLowerCase(), full = `${entry.owner}.${entry.name}`.toLowerCase();
    if (name === query || full === query) return 100;
    if (name.startsWith(query)) return 70;
    if (name.includes(query) || full.includes(query)) return 50;
    if (words.every((word) => full.includes(word))) return 40;
    if (entry.tags.some((tag) => words.includes(tag.toLowerCase()))) return 30;
    return 10;
  }

  /* The entries matching `text`, best first. */
  F.search = function (catalog, text) {
    F._searchIndex = F._searchIndex || buildIndex(catalog);
    const terms = text.toLowerCase().split(/\s+/).filter(Boolean);
    const tags = terms.filter((t) => t.startsWith("tag:")).map((t) => t.slice(4)).filter(Boolean);
    const words = terms.filter((t) => !t.startsWith("tag:"));
    if (!words.length && !tags.length) return [];
    return F._searchIndex
      .map((entry) => ({ entry, score: score(entry, words, tags) }))
      .filter((hit) => hit.score > 0)
      .sort((a, b) => b.score - a.score || TYPE_ORDER[a.entry.type] - TYPE_ORDER[b.entry.type]
        || a.entry.owner.localeCompare(b.entry.owner) || a.entry.name.localeCompare(b.entry.name))
      .slice(0, LIMIT)
      .map((hit) => hit.entry);
  };

  /* Wire the search box: results as you type, arrows and Enter to pick, Escape to close, "/" to focus. */
  F.setupSearch = function (catalog) {
    const input = document.getElementById("search");
    const list = document.getElementById("search-results");
    let active = -1;
    const items = () => [...list.querySelectorAll(".search-result")];
    const close = () => { list.hidden = true; active = -1; };
    const go = (href) => { close(); input.value = ""; input.blur(); location.hash = href; };
    const mark = (index) => {
      active = index;
      items().forEach((item, i) => item.classList.toggle("active", i === index));
      if (items()[index]) items()[index].scrollIntoView({ block: "nearest" });
    };
    const show = () => {
      const hits = F.search(catalog, input.value);
      list.replaceChildren();
      if (!input.value.trim()) { close(); return; }
      if (!hits.length) list.append(F.el("li", { class: "search-empty", text: "No model, feature, service or source matches." }));
      for (const hit of hits) {
        list.append(F.el("li", { class: "search-result", dataset: { href: hit.href, type: hit.type, model: hit.owner, name: hit.name },
          onmousedown: (event) => { event.preventDefault(); go(hit.href); } },
          F.el("span", { class: "what" }, F.badge(hit.type, hit.type)),
          F.el("span", null, F.el("strong", { class: "mono", text: hit.name }), hit.owner ? F.el("span", { class: "where", text: `in ${hit.owner}` }) : null,
            hit.tags.length ? F.el("span", { class: "where", text: hit.tags.map((t) => `#${t}`).join(" ") }) : null),
          F.el("span", { class: "snippet", text: hit.description || hit.extra.trim() })));
      }
      list.hidden = false;
      active = -1;
    };
    input.addEventListener("input", show);
    input.addEventListener("focus", () => { if (input.value.trim()) show(); });
    input.addEventListener("blur", () => setTimeout(() => { if (document.activeElement !== input) close(); }, 150));
    input.addEventListener("keydown", (event) => {
      const count = items().length;
      if (event.key === "ArrowDown" && count) { event.preventDefault(); mark((active + 1) % count); }
      else if (event.key === "ArrowUp" && count) { event.preventDefault(); mark((active - 1 + count) % count); }
      else if (event.key === "Enter" && count) { go(items()[Math.max(active, 0)].dataset.href); }
      else if (event.key === "Escape") { close(); input.blur(); }
    });
    document.addEventListener("keydown", (event) => {
      if (event.key === "/" && document.activeElement !== input) { event.preventDefault(); input.focus(); }
    });
  };
})(window.FSQL);
