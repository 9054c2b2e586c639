// The apps page: every app at a glance, kept current by the event stream.

import { api } from "./api.js";
import { h, short, processes } from "./dom.js";

const ACTIVE = new Set(["pending", "starting", "up", "stopping"]);
const FAILED = new Set(["crashed", "failed"]);

// One event applied to the apps' summaries; the id of the app it changed, if any.
export function applyToApps(apps, ev) {
  const d = ev.data || {};
  let app = apps.get(ev.app);
  switch (ev.object_type) {
    case "app":
      if (!app) {
        app = { id: d.id, name: d.name, release: d.release || null, processes: {}, jobs: {},
          failed_jobs: 0, deployment: null, created_at: d.created_at, formations: {} };
        apps.set(d.id, app);
      } else app.name = d.name;
      return d.id;
    case "app_deletion": apps.delete(ev.app); return ev.app;
  }
  if (!app) return null;
  app.formations = app.formations || {};
  switch (ev.object_type) {
    case "app_release":
      app.release = d.release.id;
      app.processes = app.formations[app.release] || {};
      break;
    case "scale":
      app.formations[d.release] = d.processes || {};
      if (d.release === app.release) app.processes = d.processes || {};
      break;
    case "job":
      if (ACTIVE.has(d.state)) app.jobs[d.id] = d.state; else delete app.jobs[d.id];
      if (FAILED.has(d.state)) app.failed_jobs += 1;
      break;
    case "deployment":
      app.deployment = { id: d.deployment, status: d.status, new_release: d.release };
      break;
    default: return null;
  }
  return app.id;
}

function jobsText(app) {
  const counts = {};
  for (const state of Object.values(app.jobs)) counts[state] = (counts[state] || 0) + 1;
  const parts = Object.entries(counts).sort().map(([s, n]) => `${n} ${s}`);
  if (app.failed_jobs) parts.push(`${app.failed_jobs} crashed`);
  return parts.join(" · ") || "none";
}

function fillRow(row, app) {
  const link = h("a", { href: `#/apps/${app.id}` }, app.name);
  const d = app.deployment;
  row.replaceChildren(
    h("td", {}, link),
    h("td", { class: "mono hide-narrow" }, short(app.release)),
    h("td", {}, processes(app.processes)),
    h("td", {}, jobsText(app)),
    h("td", { class: d ? `state-${d.status}` : "muted" }, d ? `${d.status} → ${short(d.new_release)}` : "—"),
  );
}

export function appsPage(root, ctx) {
  const apps = new Map();
  const rows = new Map();
  const body = h("tbody");
  const count = h("p", { class: "muted", "aria-live": "polite" }, "");
  root.append(h("h1", {}, "Apps"), count, h("div", { class: "scroll" }, h("table", {},
    h("caption", { class: "skip" }, "Apps, newest first"),
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "App"),
      h("th", { scope: "col", class: "hide-narrow" }, "Release"), h("th", { scope: "col" }, "Processes"),
      h("th", { scope: "col" }, "Jobs"), h("th", { scope: "col" }, "Last deployment"))),
    body)));
  let since = Infinity;
  const pending = [];

  const show = (id) => {
    const app = apps.get(id);
    let row = rows.get(id);
    if (!app) { if (row) row.remove(); rows.delete(id); return; }
    if (!row) { row = h("tr", { "data-app": app.name }); rows.set(id, row); body.prepend(row); }
    fillRow(row, app);
  };
  const onBatch = (e) => {
    if (since === Infinity) { pending.push(...e.detail); return; }
    const changed = new Set();
    for (const ev of e.detail) {
      if (ev.id <= since) continue;
      const id = applyToApps(apps, ev);
      if (id) changed.add(id);
    }
    for (const id of changed) show(id);
    count.textContent = `${apps.size} apps`;
  };
  ctx.stream.addEventListener("batch", onBatch);

  api("/dashboard/apps").then(({ doc, position }) => {
    const fragment = document.createDocumentFragment();
    for (const app of doc) {
      apps.set(app.id, app);
      const row = h("tr", { "data-app": app.name });
      fillRow(row, app);
      rows.set(app.id, row);
      fragment.append(row);
    }
    body.append(fragment);
    since = position;
    onBatch({ detail: pending.splice(0) });
    count.textContent = `${apps.size} apps`;
    ctx.appsReady = performance.now();
  });
  return { stop: () => ctx.stream && ctx.stream.removeEventListener("batch", onBatch) };
}
