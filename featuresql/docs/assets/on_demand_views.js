/* featuresql docs: the page of an on-demand model (#/model/name): no table, its features computed per request
 * from the request's columns and the features of the models it reads. Its features' pages are featureView's. */
"use strict";
window.FSQL = window.FSQL || {};

(function (F) {
  const el = (...args) => F.el(...args);
  const links = (names, href) => names.map((n, i) => [i ? ", " : "", F.link(href(n), n)]);

  F.onDemandView = function (catalog, model) {
    return [
      el("div", { class: "crumbs" }, F.link("#/", catalog.metadata.project), " / models"),
      el("h1", null, model.name, el("span", { class: "badges" }, F.kindBadge(model.kind),
        model.online ? F.badge("online", "online") : null, model.tags.map((t) => F.badge(`#${t}`, "tag")))),
      el("div", { id: "model-description", class: "subtitle", markdown: model.description || "_No description._" }),
      el("div", { class: "two" }, propertiesCard(model), computedCard(model)),
      requestCard(model),
      featuresCard(model),
      model.online_read ? F.section("Online: how to read it", { id: "model-online" },
        F.onlineCalls(model.online_read), F.responseTable(model.online_read.response_features)) : null,
      model.tests.length ? F.testsCard(model.tests, "Tests") : null,
      F.section("Lineage", { id: "model-lineage" }, F.lineageOf(catalog, { box: `model:${model.name}` })),
      F.sqlCard(catalog, model, "SQL", "model-sql"),
    ];
  };

  function propertiesCard(model) {
    const keys = model.keys.map((k, i) => [i ? ", " : "", el("code", { text: k.name }), k.type ? ` ${k.type}` : ""]);
    return F.section("Properties", { id: "on-demand-props" }, F.props([
      ["Owner", model.owner], ["Entity", model.entity],
      ["Entity keys", [keys, el("span", { class: "muted", text: " (of the models it reads)" })]],
      ["Request columns", model.request.map((c, i) => [i ? ", " : "", el("code", { text: c.name }), ` ${c.type}`])],
      ["Depends on", links(model.depends_on, F.modelHref)],
      ["Features read", model.inputs.map((r, i) => [i ? ", " : "", F.link(F.featureHref(r.model, r.feature), `${r.model}.${r.feature}`, { class: "mono" })])],
      ["Services", links(model.services, F.serviceHref)],
      ["File", el("code", { text: model.path })],
      ["Described in", model.yaml_path ? el("code", { text: model.yaml_path }) : null],
    ]));
  }

  function computedCard(model) {
    const computed = model.computed;
    return F.section("How it is computed", { id: "on-demand-computed" },
      el("p", { class: "muted", text: "No table: nothing is run or stored ahead of time. The same SQL is evaluated per request:" }),
      el("h3", { text: "Offline (training sets)" }), el("p", { text: computed.offline }), F.code(computed.extract_command),
      el("h3", { text: "Online (the reader)" }), el("p", { text: computed.online }));
  }

  function requestCard(model) {
    const rows = model.request.map((c) => el("tr", { dataset: { column: c.name } },
      el("td", { class: "mono name", text: c.name }), el("td", { class: "mono nowrap", text: c.type }),
      el("td", null, model.columns.filter((f) => f.request_columns.includes(c.name))
        .map((f, i) => [i ? ", " : "", F.link(F.featureHref(model.name, f.name), f.name, { class: "mono" })]))));
    const note = el("p", { class: "muted" }, "Sent by the client next to the keys (", el("code", { text: model.keys.map((k) => k.name).join(", ") }),
      ") in each entity online; columns of the spine offline. A value must be of the declared type.");
    return F.section(`Request columns (${model.request.length})`, { id: "on-demand-request" },
      F.table(["Column", "Type", "Used by"], rows), note);
  }

  function featuresCard(model) {
    const rows = model.columns.map((c) => el("tr", { dataset: { column: c.name } },
      el("td", { class: "name" }, el("a", { href: F.featureHref(model.name, c.name), class: "mono feature-link" }, F.breakable(c.name))),
      el("td", { class: "mono" }, F.breakable(c.expression)),
      el("td", null, c.reads.map((r) => el("div", null, F.link(F.featureHref(r.model, r.feature), `${r.model}.${r.feature}`, { class: "mono" })))),
      el("td", { class: "mono nowrap", text: c.type || "unknown" }),
      el("td", { markdown: c.description || "" })));
    const note = el("p", { class: "muted" }, "Columns are ", el("code", { text: "request.<column>" }), " and ",
      el("code", { text: "<model>.<feature>" }), ". A type is known once the models it reads are built (featuresql run).");
    return F.section(`Features (${model.columns.length})`, { id: "model-columns" },
      F.table(["Feature", "Expression", "Reads", "Type", "Description"], rows), note);
  }
})(window.FSQL);
