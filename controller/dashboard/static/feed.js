// The live feed of every event, filtered by app, object type and actor.

import { api } from "./api.js";
import { h, short, time, describe, actorOf } from "./dom.js";

const SHOWN = 300;      // rows in the page at once
const KEPT = 5000;      // events kept for re-filtering
const TYPES = ["app", "app_deletion", "app_release", "release", "release_deletion", "artifact",
  "scale", "job", "deployment", "route", "route_deletion", "resource", "resource_deletion",
  "provider", "domain_migration"];

export function feedPage(root, ctx) {
  const names = new Map();
  const all = [];
  const actors = new Set();
  const body = h("tbody");
  const select = (id, label, options) => {
    const el = h("select", { id, name: id }, h("option", { value: "" }, "any"),
      options.map((o) => h("option", { value: o }, o)));
    el.addEventListener("change", redraw);
    return [h("label", { for: id }, label, el), el];
  };
  const [appLabel, appFilter] = select("filter-app", "App", []);
  const [typeLabel, typeFilter] = select("filter-type", "Object type", TYPES);
  const [actorLabel, actorFilter] = select("filter-actor", "Actor", []);
  const counter = h("p", { class: "muted", id: "feed-count" }, "");
  root.append(h("h1", {}, "Events"), h("div", { class: "filters", role: "group", "aria-label": "Filters" },
    appLabel, typeLabel, actorLabel), counter,
    h("div", { class: "feed", tabindex: "0", "aria-label": "Events, newest first" }, h("table", {},
      h("thead", {}, h("tr", {}, ["Event", "Time", "App", "Type", "What", "Who"].map((t) => h("th", { scope: "col" }, t)))),
      body)));
  ctx.feedRendered = 0;

  const matches = (ev) => (!appFilter.value || ev.app === appFilter.value) &&
    (!typeFilter.value || ev.object_type === typeFilter.value) &&
    (!actorFilter.value || actorOf(ev) === actorFilter.value);
  const row = (ev) => h("tr", { "data-event": ev.id, "data-who": actorOf(ev) },
    h("td", { class: "mono" }, ev.id), h("td", {}, time(ev.created_at)),
    h("td", {}, ev.app ? names.get(ev.app) || short(ev.app) : "—"), h("td", {}, ev.object_type),
    h("td", {}, describe(ev)), h("td", { class: "who" }, actorOf(ev)));
  const learn = (ev) => {
    if (ev.object_type === "app" && ev.data && !names.has(ev.data.id)) {
      names.set(ev.data.id, ev.data.name);
      appFilter.append(h("option", { value: ev.data.id }, ev.data.name));
    }
    const who = actorOf(ev);
    if (who !== "—" && !actors.has(who)) {
      actors.add(who);
      actorFilter.append(h("option", { value: who }, who));
    }
  };
  function redraw() {
    body.replaceChildren(...all.filter(matches).slice(-SHOWN).reverse().map(row));
  }
  let since = Infinity;
  const pending = [];
  const onBatch = (e) => {
    if (since === Infinity) { pending.push(...e.detail); return; }
    const fresh = e.detail.filter((ev) => ev.id > since);
    since = fresh.length ? fresh[fresh.length - 1].id : since;
    fresh.forEach(learn);
    all.push(...fresh);
    if (all.length > KEPT) all.splice(0, all.length - KEPT);
    const shown = fresh.filter(matches);
    if (shown.length) {
      const fragment = document.createDocumentFragment();
      for (const ev of shown.slice(-SHOWN).reverse()) fragment.append(row(ev));
      body.prepend(fragment);
      while (body.childElementCount > SHOWN) body.lastElementChild.remove();
    }
    ctx.feedRendered += fresh.length;
    ctx.feedLastId = since;
    counter.textContent = `${ctx.feedRendered} events since the page opened`;
  };
  ctx.stream.addEventListener("batch", onBatch);

  // A `stream` key may not read these: its feed starts empty and follows the stream.
  const readable = (path) => api(path).catch(() => ({ doc: [], position: 0 }));
  Promise.all([readable("/apps"), readable("/events?count=200")]).then(([apps, recent]) => {
    for (const app of apps.doc) { names.set(app.id, app.name); appFilter.append(h("option", { value: app.id }, app.name)); }
    const history = recent.doc.slice().reverse();
    history.forEach(learn);
    all.push(...history);
    since = Math.max(recent.position, history.length ? history[history.length - 1].id : 0);
    redraw();
    onBatch({ detail: pending.splice(0) });
  });
  return { stop: () => ctx.stream && ctx.stream.removeEventListener("batch", onBatch) };
}
