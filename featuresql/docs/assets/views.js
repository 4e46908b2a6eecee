/* featuresql docs: the overview (models, feature services, sources), source and lineage pages. */
"use strict";
window.FSQL = window.FSQL || {};

(function (F) {
  const el = (...args) => F.el(...args);

  const DEFAULT_OVERVIEW = "Every feature model of the project: what each feature computes, from which source columns, " +
    "how fresh it is, how it is tested and how services read it online. Search with the box above (`/`), or follow the lineage.";

  F.overviewView = function (catalog) {
    const meta = catalog.metadata;
    const models = F.allModels(catalog);
    const features = models.reduce((n, m) => n + m.columns.filter((c) => c.role === "feature").length, 0);
    const tests = meta.tests;
    return [
      el("h1", { text: meta.project }),
      el("div", { class: "subtitle" }, `Target ${meta.target} (${meta.target_type}, schema ${meta.schema}) \u00b7 generated ${F.time(meta.generated_at)}`),
      el("div", { class: "card", id: "overview", markdown: catalog.overview || DEFAULT_OVERVIEW }),
      el("div", { class: "stats" }, stat(models.length, "models"), stat(features, "features"),
        stat(models.filter((m) => m.online).length, "online models"), stat(Object.keys(catalog.services).length, "feature services"),
        stat(Object.keys(catalog.sources).length, "source tables"),
        tests ? stat(`${tests.counts ? tests.counts.pass : 0}/${Object.values(tests.counts || {}).reduce((a, b) => a + b, 0)}`, `tests passed (${F.time(tests.generated_at)})`)
          : stat("\u2013", "tests never run")),
      notes(meta),
      F.section("Models", { id: "overview-models" }, F.table(["Model", "Kind", "Entity", "Features", "Online", "Tags", "Last run", "Newest data", "Tests"],
        models.sort((a, b) => a.name.localeCompare(b.name)).map(modelRow))),
      servicesCard(catalog),
      F.section("Sources", { id: "overview-sources" }, F.table(["Source table", "Relation", "Columns", "Event time", "Freshness", "Description"],
        Object.values(catalog.sources).map((s) => el("tr", null, el("td", null, F.link(F.sourceHref(s.key), s.key, { class: "mono" })),
          el("td", { class: "mono", text: s.relation }), el("td", { class: "num", text: s.columns.length }),
          el("td", { class: "mono", text: s.event_time || "" }), el("td", { text: limitsText(s.freshness) }),
          el("td", { markdown: s.description || "" }))))),
    ];
  };

  /* A model's row; an on-demand model has no table, so no run and no data of its own. */
  function modelRow(m) {
    const onDemand = m.kind === F.ON_DEMAND;
    return el("tr", null,
      el("td", null, F.link(F.modelHref(m.name), m.name, { class: "mono" })), el("td", null, F.kindBadge(m.kind)),
      el("td", { text: m.entity || "" }), el("td", { class: "num", text: m.columns.filter((c) => c.role === "feature").length }),
      el("td", null, m.online ? F.badge("online", "online") : ""), el("td", null, m.tags.map((t) => [F.badge(`#${t}`, "tag"), " "])),
      onDemand ? el("td", { class: "muted", text: "computed per request" })
        : el("td", null, F.runBadge(m.last_run), m.last_run ? el("span", { class: "muted", text: ` ${F.ago(m.last_run.finished_at)}` }) : null),
      el("td", { text: !onDemand && m.freshness.newest ? F.time(m.freshness.newest) : "" }), el("td", null, testSummary(m.tests)));
  }

  function servicesCard(catalog) {
    const services = Object.values(catalog.services).sort((a, b) => a.name.localeCompare(b.name));
    if (!services.length) return null;
    return F.section("Feature services", { id: "overview-services" }, F.table(["Service", "Version", "Features", "Models", "Owner", "Tags", "Description"],
      services.map((s) => el("tr", null, el("td", null, F.link(F.serviceHref(s.name), s.name, { class: "mono" })),
        el("td", { text: s.version == null ? "" : `v${s.version}` }), el("td", { class: "num", text: s.features.length }),
        el("td", null, s.models.map((n, i) => [i ? ", " : "", F.link(F.modelHref(n), n)])), el("td", { class: "nowrap", text: s.owner || "" }),
        el("td", null, s.tags.map((t) => [F.badge(`#${t}`, "tag"), " "])), el("td", { markdown: s.description || "" })))));
  }

  function stat(value, label) {
    return el("div", { class: "stat" }, el("b", { text: String(value) }), el("span", { text: label }));
  }

  function notes(meta) {
    const lines = [meta.warehouse.note, ...(meta.notes || [])].filter(Boolean);
    if (!lines.length) return null;
    return el("div", { class: "card muted", id: "notes" }, lines.map((line) => el("div", { text: line })));
  }

  function testSummary(tests) {
    if (!tests.length) return el("span", { class: "muted", text: "none" });
    const counts = {};
    tests.forEach((t) => { const s = t.last ? t.last.status : "not run"; counts[s] = (counts[s] || 0) + 1; });
    return Object.entries(counts).map(([status, n]) => [F.badge(`${n} ${status}`, status), " "]);
  }

  function limitsText(limits) {
    if (!limits) return "";
    return [limits.warn_after && `warn after ${limits.warn_after}`, limits.error_after && `error after ${limits.error_after}`]
      .filter(Boolean).join(", ");
  }

  F.sourceView = function (catalog, source, column) {
    const graph = F.lineageModel(catalog);
    const focus = column ? { node: `source:${source.key}.${column}` } : { box: `source:${source.key}` };
    const holder = el("div");
    F.drawLineage(holder, catalog, focus, F.openNode);
    const rows = source.columns.map((c) => {
      const used = [...F.reach(graph.downstream, `source:${source.key}.${c.name}`)].filter((n) => n.startsWith("model:"));
      return el("tr", { class: c.name === column ? "focus" : null },
        el("td", null, F.link(F.sourceHref(source.key, c.name), c.name, { class: "mono" })), el("td", { class: "mono", text: c.type || "unknown" }),
        el("td", { markdown: c.description || "" }), el("td", { class: "num", title: used.join("\n"), text: used.length }));
    });
    return [
      el("div", { class: "crumbs" }, F.link("#/", catalog.metadata.project), " / sources"),
      el("h1", null, el("span", { class: "mono", text: source.key }), el("span", { class: "badges" }, F.badge("source", "source"))),
      el("div", { class: "subtitle", markdown: source.description || "_No description._" }),
      F.section("Properties", null, F.props([
        ["Relation", el("code", { text: source.relation })], ["Event time", source.event_time ? el("code", { text: source.event_time }) : null],
        ["Data delay", source.data_delay], ["Freshness", limitsText(source.freshness)],
        ["Loaded at", source.loaded_at_field ? el("code", { text: source.loaded_at_field }) : null],
        ["Files", source.files ? el("code", { text: `${source.files.location} (${source.files.format})` }) : null],
        ["Declared in", el("code", { text: source.path })],
        ["Used by", source.used_by.map((n, i) => [i ? ", " : "", F.link(F.modelHref(n), n)])],
      ])),
      F.section("Columns", { id: "source-column-table" }, F.table(["Column", "Type", "Description", "Model columns computed from it"], rows)),
      F.testsCard(source.tests, "Tests"),
      F.section(column ? `Where ${column} goes` : "Lineage", { id: "source-lineage" }, holder),
    ];
  };

  F.lineageView = function (catalog) {
    const holder = el("div");
    F.drawLineage(holder, catalog, null, F.openNode);
    return [
      el("h1", { text: "Lineage" }),
      el("p", { class: "subtitle", text: "Sources \u2192 models \u2192 online features, column by column (computed with sqlglot). " +
        "Click a column to see the source columns it is computed from and what it feeds." }),
      el("section", { class: "card", id: "lineage-page" }, holder),
    ];
  };
})(window.FSQL);
