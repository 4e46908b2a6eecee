/* featuresql docs: start-up, the sidebar and the router (#/model/m, #/model/m/column, #/service/s, #/source/s.t, #/lineage). */
"use strict";
window.FSQL = window.FSQL || {};

(function (F) {
  const catalog = JSON.parse(document.getElementById("catalog-data").textContent);
  F.catalog = catalog;

  /* A lineage node clicked in a graph: open its page. */
  F.openNode = function (node) {
    const kind = node.slice(0, node.indexOf(":"));
    const rest = node.slice(kind.length + 1);
    const dot = rest.lastIndexOf(".");
    if (kind === "model") location.hash = F.featureHref(rest.slice(0, dot), rest.slice(dot + 1));
    else if (kind === "source") location.hash = F.sourceHref(rest.slice(0, dot), rest.slice(dot + 1));
    else if (kind === "online") location.hash = F.featureHref(rest.slice(0, dot), rest.slice(dot + 1));
    else if (kind === "request") location.hash = F.modelHref(rest.slice(0, dot));
  };

  function sidebar() {
    const nav = document.getElementById("nav");
    const models = F.allModels(catalog).sort((a, b) => a.name.localeCompare(b.name));
    const services = Object.values(catalog.services).sort((a, b) => a.name.localeCompare(b.name));
    const item = (href, label, dot, title) => F.el("a", { href, title: title || label, dataset: { href } },
      dot ? F.el("span", { class: `dot ${dot}` }) : null, F.el("span", { text: label }));
    nav.replaceChildren(...[
      item("#/", "Overview"), item("#/lineage", "Lineage graph"),
      F.el("h4", { text: `Models (${models.length})` }),
      models.map((m) => item(F.modelHref(m.name), m.name, m.kind, `${F.kindLabel(m.kind)} model${m.online ? ", online" : ""}`)),
      services.length ? F.el("h4", { text: `Services (${services.length})` }) : null,
      services.map((s) => item(F.serviceHref(s.name), s.name, "service", `feature service${s.version == null ? "" : ` v${s.version}`}`)),
      F.el("h4", { text: `Sources (${Object.keys(catalog.sources).length})` }),
      Object.values(catalog.sources).map((s) => item(F.sourceHref(s.key), s.key, "source")),
    ].flat());
  }

  function markActive(hash) {
    document.querySelectorAll("#nav a").forEach((a) => {
      const href = a.dataset.href;
      a.classList.toggle("active", href === "#/" ? hash === "#/" || hash === "" : hash === href || hash.startsWith(href + "/"));
    });
  }

  function notFound(what) {
    return [F.el("h1", { text: "Not found" }), F.el("p", null, `${what} is not in this catalog. `, F.link("#/", "Back to the overview"))];
  }

  function page(parts) {
    const [kind, name, column] = parts;
    if (!kind) return F.overviewView(catalog);
    if (kind === "lineage") return F.lineageView(catalog);
    if (kind === "model") {
      const model = F.findModel(catalog, name);
      if (!model) return notFound(`Model ${name}`);
      if (column === undefined) return model.kind === F.ON_DEMAND ? F.onDemandView(catalog, model) : F.modelView(catalog, model);
      const entry = model.columns.find((c) => c.name === column);
      return entry ? F.featureView(catalog, model, entry) : notFound(`Column ${name}.${column}`);
    }
    if (kind === "service") {
      const service = catalog.services[name];
      return service ? F.serviceView(catalog, service) : notFound(`Service ${name}`);
    }
    if (kind === "source") {
      const source = catalog.sources[name];
      return source ? F.sourceView(catalog, source, column) : notFound(`Source ${name}`);
    }
    return notFound(location.hash);
  }

  function route() {
    const hash = location.hash || "#/";
    const parts = hash.replace(/^#\/?/, "").split("/").filter((p, i) => p || i === 0).map(decodeURIComponent);
    if (parts[0] === "") parts.shift();
    const main = document.getElementById("main");
    main.replaceChildren(...[page(parts)].flat(Infinity).filter(Boolean));
    main.dataset.page = parts.join("/") || "overview";
    markActive(hash);
    const title = parts.length ? parts.slice(1).join(".") || parts[0] : "overview";
    document.title = `${title} \u00b7 ${catalog.metadata.project} docs`;
    window.scrollTo(0, 0);
  }

  function start() {
    const meta = catalog.metadata;
    document.getElementById("project-name").textContent = `${meta.project} feature catalog`;
    document.getElementById("target-info").textContent = `target ${meta.target} \u00b7 ${F.time(meta.generated_at)}`;
    sidebar();
    F.setupSearch(catalog);
    window.addEventListener("hashchange", route);
    route();
    document.body.dataset.ready = "true";
  }

  start();
})(window.FSQL);
