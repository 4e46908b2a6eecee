/* featuresql docs: the page of a model and the page of one of its features (an on-demand model's too). */
"use strict";
window.FSQL = window.FSQL || {};

(function (F) {
  const el = (...args) => F.el(...args);

  F.modelView = function (catalog, model) {
    const meta = catalog.metadata;
    return [
      el("div", { class: "crumbs" }, F.link("#/", meta.project), " / models"),
      el("h1", null, model.name, el("span", { class: "badges" }, F.kindBadge(model.kind),
        model.online ? F.badge("online", "online") : null, model.tags.map((t) => F.badge(`#${t}`, "tag")))),
      el("div", { id: "model-description", class: "subtitle", markdown: model.description || "_No description._" }),
      el("div", { class: "two" }, propertiesCard(catalog, model), statusCard(model)),
      featuresCard(model),
      model.online_read ? onlineCard(model) : null,
      testsCard(model.tests, "Tests"),
      runsCard(model),
      F.section("Lineage", { id: "model-lineage" }, lineageOf(catalog, { box: `model:${model.name}` })),
      sqlCard(catalog, model, "SQL", "model-sql"),
    ];
  };

  function propertiesCard(catalog, model) {
    const links = (names, href) => names.length ? names.map((n, i) => [i ? ", " : "", F.link(href(n), n)]) : null;
    const entity = model.entity ? [model.entity, " (", model.keys.map((k) => `${k.name}${k.type ? " " + k.type : ""}`).join(", "), ")"] : null;
    return F.section("Properties", null, F.props([
      ["Owner", model.owner], ["Entity", entity], ["Timestamp", model.timestamp ? el("code", { text: model.timestamp }) : null],
      ["Grain", model.grain], ["Windows", model.windows.join(", ")], ["Data delay", model.data_delay],
      ["Start", model.start ? F.time(model.start) : null], ["TTL", model.ttl], ["Lookback", model.lookback ? `${model.lookback} tiles` : null],
      ["Batch size", model.batch_size ? `${model.batch_size} tiles` : null], ["Tie break", model.tie_break],
      ["Relation", el("code", { text: model.relation })], ["File", el("code", { text: model.path })],
      ["Described in", model.yaml_path ? el("code", { text: model.yaml_path }) : null],
      ["Depends on", links(model.depends_on, F.modelHref)], ["Sources", links(model.sources, (k) => F.sourceHref(k))],
      ["Used by", links(model.used_by, F.modelHref)],
    ]));
  }

  function statusCard(model) {
    const run = model.last_run, fresh = model.freshness;
    const freshnessTest = model.tests.find((t) => t.kind === "freshness");
    const limits = fresh.limits ? [fresh.limits.warn_after && `warn after ${fresh.limits.warn_after}`,
      fresh.limits.error_after && `error after ${fresh.limits.error_after}`].filter(Boolean).join(", ") : null;
    return F.section("Status", { id: "model-status" }, F.props([
      ["Last run", run ? [F.runBadge(run), " ", F.time(run.finished_at), el("span", { class: "muted", text: ` (${F.ago(run.finished_at)})` })] : F.runBadge(null)],
      ["Rows written", run && run.rows != null ? `${F.number(run.rows)} in ${run.seconds}s` : null],
      ["Last run computed", run && run.interval ? `boundaries [${run.interval[0] ? F.time(run.interval[0]) : "beginning"}, ${F.time(run.interval[1])})` : null],
      ["Run error", run && run.message ? run.message : null],
      ["Newest data", fresh.newest ? [el("span", { id: "newest-data", text: F.time(fresh.newest) }), el("span", { class: "muted", text: ` (${fresh.measured_by})` })]
        : (model.built ? "no rows" : "not built")],
      ["Computed through", fresh.computed_through ? [el("span", { id: "computed-through", text: F.time(fresh.computed_through) }),
        el("span", { class: "muted", text: " (newest boundary computed: its values cover the events before it)" })] : null],
      ["Table rows", fresh.table_rows != null ? F.number(fresh.table_rows) : null],
      ["Freshness", limits], ["Freshness test", freshnessTest ? F.resultBadge(freshnessTest.last) : null],
    ]));
  }

  function featuresCard(model) {
    const rows = model.columns.map((c) => el("tr", { dataset: { column: c.name } },
      el("td", { class: "name" }, el("a", { href: F.featureHref(model.name, c.name), class: "mono feature-link" }, F.breakable(c.name))),
      el("td", null, c.role === "feature" ? "" : F.badge(c.role)),
      el("td", { class: "mono nowrap", text: c.function || "" }),
      el("td", { class: "mono" }, F.breakable(c.function ? c.input : (c.expression || ""))),
      el("td", { class: "nowrap", text: c.window || "" }),
      el("td", { class: "mono nowrap", text: c.type || "unknown" }),
      el("td", { markdown: c.description || "" }),
      el("td", null, model.tests.filter((t) => t.column === c.name.toLowerCase()).map((t) => [testBadge(t), " "]))));
    const note = model.built ? null : el("p", { class: "muted", text: "Types are known once the model is built (featuresql run)." });
    return F.section(`Columns (${model.columns.filter((c) => c.role === "feature").length} features)`, { id: "model-columns" },
      F.table(["Column", "Role", "Function", "Input / expression", "Window", "Type", "Description", "Tests"], rows), note);
  }

  /* A test as a small badge: its kind, coloured by its last result. */
  function testBadge(test) {
    const status = test.last ? test.last.status : "";
    return F.badge(test.kind, status, `${test.name}: ${test.last ? test.last.status : "not run"}`);
  }

  function onlineCard(model) {
    return F.section("Online: how to read it", { id: "model-online" },
      F.onlineCalls(model.online_read), F.responseTable(model.online_read.response_features));
  }

  /* How an application reads online (a model's or a feature service's online_read): the request, the CLI, HTTP. */
  F.onlineCalls = function (read) {
    return [
      el("p", null, `Served from the ${read.store} store after `, el("code", { text: "featuresql sync" }),
        ". An application sends this request to the Lambda reader (direct invocation, API Gateway or function URL):"),
      F.code(read.request_body, { id: "online-request" }),
      el("h3", { text: "From the command line" }), F.code(read.read_command),
      el("h3", { text: "Over HTTP (featuresql serve)" }), F.code(`${read.serve_command}\n${read.curl_post}\ncurl -s '${read.get_url}'`),
    ];
  };

  /* The response's features ({name, missing_value, on_demand}) and what each reads as when the entity has no item:
   * an on-demand feature is still computed, from the request and its inputs' missing values. */
  F.responseTable = function (features) {
    const missing = (f) => (f.on_demand ? el("span", { class: "muted", text: "computed per request" })
      : el("span", { class: "mono", text: f.missing_value === null ? "null" : String(f.missing_value) }));
    const rows = features.map((f) => el("tr", null, el("td", { class: "mono" }, F.breakable(f.name)), el("td", null, missing(f))));
    return [el("h3", { text: "Response features (value when the entity has no item)" }), F.table(["Feature", "Missing value"], rows)];
  };

  function testsCard(tests, title) {
    if (!tests.length) return F.section(title, null, el("p", { class: "muted", text: "No tests." }));
    const rows = tests.map((t) => el("tr", null, el("td", { class: "mono name" }, F.breakable(t.name)), el("td", { class: "nowrap", text: t.kind }),
      el("td", { class: "mono" }, F.breakable(t.column || "")), el("td", { text: t.severity }),
      el("td", { class: "nowrap" }, F.resultBadge(t.last)), el("td", { class: "muted message", text: t.last ? (t.last.message || "") : "" })));
    return F.section(`${title} (${tests.length})`, { class: "card tests" }, F.table(["Test", "Kind", "Column", "Severity", "Last result", "Message"], rows));
  }
  F.testsCard = testsCard;

  function runsCard(model) {
    if (!model.runs.length) return F.section("Run history", { id: "model-runs" }, el("p", { class: "muted", text: "Never run on this target." }));
    const rows = model.runs.map((r) => el("tr", null, el("td", { text: F.time(r.finished_at) }), el("td", null, F.runBadge(r)),
      el("td", { class: "num", text: F.number(r.rows) }), el("td", { class: "num", text: r.seconds }), el("td", { class: "num", text: r.batches }),
      el("td", { text: r.interval ? `${r.interval[0] ? F.time(r.interval[0]) : "beginning"} \u2192 ${F.time(r.interval[1])}` : "" }),
      el("td", { class: "mono muted", text: r.run_id })));
    const note = model.kind === "window" ? el("p", { class: "muted", text: "From the target's run log (featuresql.run_log): " +
      "a run with no new boundary to compute logs it as up to date." }) : null;
    return F.section("Run history", { id: "model-runs" }, F.table(["Finished", "Status", "Rows", "Seconds", "Batches", "Boundaries", "Run"], rows), note);
  }

  /* The model's SQL as written and as run: compiled (the full build) for a model with a table,
   * rendered (Jinja and ref() resolved) for an on-demand model, which builds nothing. */
  function sqlCard(catalog, model, title, id, extra) {
    const meta = catalog.metadata, sql = model.sql;
    const panes = [
      [`Source (${model.path})`, sql.source],
      sql.compiled != null ? [`Compiled for ${meta.target} (${meta.dialect})`, sql.compiled] : [`Rendered for ${meta.target}`, sql.rendered],
    ];
    const bodies = panes.map(([, text], i) => F.code(text, { class: "sql-pane", hidden: i > 0 }));
    const buttons = panes.map(([label], i) => el("button", { type: "button", class: i ? "" : "active", text: label, onclick: () => {
      buttons.forEach((b, j) => b.classList.toggle("active", i === j));
      bodies.forEach((b, j) => { b.hidden = i !== j; });
    } }));
    const note = sql.compiled != null
      ? el("p", { class: "muted" }, "The compiled SQL is the full build at generation time; ", el("code", { text: "featuresql compile" }),
        " writes it to ", el("code", { text: sql.compiled_path }), ".")
      : el("p", { class: "muted", text: "An on-demand model builds no table: each feature's expression is evaluated per request " +
        "(in the warehouse by featuresql extract, in the reader online)." });
    return F.section(title, { id }, extra || null, el("div", { class: "tabs" }, buttons), bodies, note);
  }
  F.sqlCard = sqlCard;

  function lineageOf(catalog, focus) {
    const holder = el("div");
    F.drawLineage(holder, catalog, focus, F.openNode);
    return holder;
  }
  F.lineageOf = lineageOf;

  F.featureView = function (catalog, model, column) {
    const node = `model:${model.name}.${column.name}`;
    const holder = el("div");
    const highlighted = F.drawLineage(holder, catalog, { node }, F.openNode);
    const tests = model.tests.filter((t) => t.column === column.name.toLowerCase());
    const expression = column.function ? `${column.function}(${column.input}) over ${column.window}` : (column.expression || column.name);
    return [
      el("div", { class: "crumbs" }, F.link("#/", catalog.metadata.project), " / ", F.link(F.modelHref(model.name), model.name), " / features"),
      el("h1", null, el("span", { class: "mono" }, `${model.name}.`, el("span", { id: "feature-name", text: column.name })),
        el("span", { class: "badges" }, F.badge(column.role, column.role), model.kind === F.ON_DEMAND ? F.kindBadge(model.kind) : null,
          model.online && column.role === "feature" ? F.badge("online", "online") : null)),
      el("div", { class: "subtitle", markdown: column.description || model.description || "_No description._" }),
      el("div", { class: "two" },
        F.section("Feature", { id: "feature-props" }, F.props([
          ["Function", column.function ? el("code", { text: column.function }) : null], ["Input", column.function ? el("code", { text: column.input }) : null],
          ["Window", column.window], ["Ties broken by", column.tie_break ? el("code", { text: column.tie_break }) : null],
          ["Expression", column.function ? null : (column.expression ? el("code", { text: column.expression }) : null)],
          ["Reads", (column.reads || []).map((r, i) => [i ? ", " : "", F.link(F.featureHref(r.model, r.feature), `${r.model}.${r.feature}`, { class: "mono" })])],
          ["Request columns", (column.request_columns || []).map((name, i) => [i ? ", " : "", el("code", { text: name })])],
          ["Type", el("code", { text: column.type || "unknown" })], ["Model", F.link(F.modelHref(model.name), model.name)],
          ["Entity", model.entity], ["Grain", model.grain], ["Data delay", model.data_delay],
          ["Empty window", column.count_like ? "0" : (column.function ? "NULL" : null)],
          ["Online", model.online && column.role === "feature" ? el("code", { text: `${model.name}__${column.name}` }) : "no"],
        ])),
        F.section("Source columns", { id: "feature-sources" }, pathList(column, highlighted))),
      F.section("Lineage", { id: "feature-lineage" }, holder),
      testsCard(tests, "Tests on this column"),
      sqlCard(catalog, model, "SQL", "feature-sql", el("div", null, el("h3", { text: "This feature" }), F.code(expression, { id: "feature-expression" }),
        el("h3", { text: `Model ${model.name}` }))),
    ];
  };

  function pathList(column, highlighted) {
    const sources = el("ul", { class: "path-list source-columns", id: "source-columns" },
      column.source_columns.length ? column.source_columns.map((c) => el("li", { dataset: { node: `source:${c}` } }, F.nodeLink(`source:${c}`)))
        : el("li", { class: "muted", text: "none (constants only, or columns of tables outside the project)" }));
    const up = highlighted ? [...highlighted.up].filter((n) => !n.startsWith("source:")).sort() : [];
    const down = highlighted ? [...highlighted.down].sort() : [];
    return [sources,
      up.length ? [el("h3", { text: "Through" }), el("ul", { class: "path-list", id: "lineage-path" }, up.map((n) => el("li", null, F.nodeLink(n))))] : null,
      down.length ? [el("h3", { text: "Feeds" }), el("ul", { class: "path-list", id: "lineage-downstream" }, down.map((n) => el("li", null, F.nodeLink(n))))] : null];
  }
})(window.FSQL);
