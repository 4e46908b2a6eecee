/* featuresql docs: the page of a feature service (#/service/name). */
"use strict";
window.FSQL = window.FSQL || {};

(function (F) {
  const el = (...args) => F.el(...args);

  F.serviceView = function (catalog, service) {
    const online = !service.offline_models.length;
    return [
      el("div", { class: "crumbs" }, F.link("#/", catalog.metadata.project), " / services"),
      el("h1", null, el("span", { class: "mono", id: "service-name", text: service.name }), el("span", { class: "badges" },
        F.badge("service", "service"), F.badge(service.version == null ? "unversioned" : `v${service.version}`, "version"),
        online ? F.badge("online", "online") : null, service.tags.map((t) => F.badge(`#${t}`, "tag")))),
      el("div", { id: "service-description", class: "subtitle", markdown: service.description || "_No description._" }),
      el("div", { class: "two" }, propertiesCard(service), sourcesCard(service)),
      featuresCard(catalog, service),
      callsCard(service),
      F.section("Lineage", { id: "service-lineage" },
        el("p", { class: "muted", text: "The path of each feature the service reads to the source columns it is computed from." }),
        F.lineageOf(catalog, { nodes: service.features.map((f) => `${online ? "online" : "model"}:${f.model}.${f.feature}`) })),
    ];
  };

  function propertiesCard(service) {
    return F.section("Properties", { id: "service-props" }, F.props([
      ["Version", service.version == null ? "none (requests cannot pin one)" : String(service.version)],
      ["Owner", service.owner], ["Tags", service.tags.join(", ")],
      ["Entity keys", service.keys.map((k, i) => [i ? ", " : "", el("code", { text: k.name }), k.type ? ` ${k.type}` : ""])],
      ["Request columns", requestColumns(service.request_columns)],
      ["Models", service.models.map((n, i) => [i ? ", " : "", F.link(F.modelHref(n), n)])],
      ["Declared in", el("code", { id: "service-declared", text: service.line ? `${service.path}:${service.line}` : service.path })],
      ["Online", service.offline_models.length ? `no: ${service.offline_models.join(", ")} not online` : "yes, after featuresql sync"],
    ]));
  }

  /* The request columns of its on-demand features: name and declared type. */
  function requestColumns(columns) {
    return columns.map((c, i) => [i ? ", " : "", el("code", { text: c.name }), ` ${c.type}`]);
  }

  function sourcesCard(service) {
    const rows = service.features.map((f) => el("tr", null, el("td", { class: "mono" }, F.breakable(f.output)),
      el("td", null, f.source_columns.length ? f.source_columns.map((c) => el("div", null, F.nodeLink(`source:${c}`)))
        : el("span", { class: "muted", text: "none" }))));
    return F.section("Source columns", { id: "service-sources" }, F.table(["Output", "Computed from"], rows));
  }

  function featuresCard(catalog, service) {
    const rows = service.features.map((f) => el("tr", { dataset: { output: f.output } },
      el("td", { class: "mono name" }, F.breakable(f.output)),
      el("td", null, el("a", { href: F.modelHref(f.model), class: "mono" }, F.breakable(f.model)),
        f.on_demand ? [" ", F.kindBadge(F.ON_DEMAND)] : null),
      el("td", null, el("a", { href: F.featureHref(f.model, f.feature), class: "mono feature-link" }, F.breakable(f.feature))),
      el("td", { class: "mono nowrap", text: f.type || "unknown" }),
      el("td", { markdown: f.description || "" })));
    const note = el("p", { class: "muted" }, "The output name is the column of a training set and the key of a response: ",
      el("code", { text: "<model>__<feature>" }), ", or the alias the service gives it.");
    return F.section(`Features (${service.features.length})`, { id: "service-features" },
      F.table(["Output", "Model", "Feature", "Type", "Description"], rows), note);
  }

  function callsCard(service) {
    const extract = service.extract, keys = service.keys.map((k) => k.name).join(", ");
    const pin = service.version == null ? null : el("p", { class: "muted" }, "A consumer built for this version pins it: ",
      el("code", { text: service.pinned }), " in the CLI and Python, ", el("code", { text: `"version": ${service.version}` }),
      " in a request; another version is refused (the reader answers 409).");
    const online = service.online_read ? [
      el("h3", { text: "Online" }), F.onlineCalls(service.online_read),
      el("h3", { text: "A Lambda reader serving only this service" }), F.code(service.online_read.package_command),
      F.responseTable(service.features.map((f) => ({ name: f.output, missing_value: f.missing_value, on_demand: f.on_demand }))),
    ] : el("p", { class: "muted", text: `Not served online: ${service.offline_models.join(", ")} ` +
      `${service.offline_models.length > 1 ? "are" : "is"} not online (set config(online=true), then featuresql sync).` });
    return F.section("How to call it", { id: "service-calls" },
      el("h3", { text: "Training set (point in time)" }),
      el("p", null, "The spine (", el("code", { text: extract.spine }), ", a warehouse table, a pandas DataFrame or an Arrow table) " +
        `has the keys (${keys}) and a time column; each row gets the features as they were at its time.`),
      extract.request_columns.length ? el("p", { id: "service-spine-request" }, "It must also carry the request columns of the " +
        "on-demand features (", requestColumns(extract.request_columns), "): each row is the request they are computed from.") : null,
      F.code(extract.extract_command, { id: "service-extract" }), F.code(extract.python, { id: "service-python" }),
      online, pin);
  }
})(window.FSQL);
