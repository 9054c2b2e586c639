// One app: its release, formation (with scale controls), jobs, routes, resources,
// deployments with their progress, and its log, all live.

import { api, load } from "./api.js";
import { h, short, stateCell, time, processes } from "./dom.js";

function section(title, id) {
  const content = h("div", { id });
  return [h("section", { "aria-labelledby": `${id}-title` },
    h("h2", { id: `${id}-title` }, title), content), content];
}

function table(headers, rows, empty) {
  if (!rows.length) return h("p", { class: "muted" }, empty);
  return h("div", { class: "scroll" }, h("table", {},
    h("thead", {}, h("tr", {}, headers.map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, rows)));
}

export function appPage(root, ctx, ref) {
  const s = { app: null, release: null, formations: {}, jobs: new Map(), routes: new Map(),
    resources: new Map(), deployments: new Map() };
  const title = h("h1", {}, "App");
  const [releaseSection, releaseBox] = section("Release", "release");
  const [formationSection, formationBox] = section("Formation", "formation");
  const [jobsSection, jobsBox] = section("Jobs", "jobs");
  const [deploySection, deployBox] = section("Deployments", "deployments");
  const [routesSection, routesBox] = section("Routes", "routes");
  const [resourcesSection, resourcesBox] = section("Resources", "resources");
  const [logSection, logBox] = section("Log", "log");
  const log = h("pre", { class: "log", "aria-live": "off", tabindex: "0", "aria-label": "Log lines" });
  logBox.append(log);
  root.append(title, h("div", { class: "grid" }, releaseSection, formationSection),
    jobsSection, deploySection, h("div", { class: "grid" }, routesSection, resourcesSection), logSection);
  let since = Infinity, logSource = null;
  const pending = [];

  const renderRelease = () => {
    const r = s.release;
    if (!r) { releaseBox.replaceChildren(h("p", { class: "muted" }, "No release yet.")); return; }
    const env = Object.entries(r.env || {}).sort().map(([k, v]) =>
      h("tr", {}, h("td", { class: "mono" }, k), h("td", { class: "mono" }, v)));
    const procs = Object.entries(r.processes || {}).sort().map(([k, p]) =>
      h("tr", {}, h("td", {}, k), h("td", { class: "mono" }, [...(p.entrypoint || []), ...(p.cmd || [])].join(" "))));
    releaseBox.replaceChildren(h("p", {}, "Release ", h("code", {}, r.id), ` · ${time(r.created_at)}`),
      h("h3", {}, "Env"), table(["Name", "Value"], env, "No env."),
      h("h3", {}, "Processes"), table(["Type", "Command"], procs, "No processes."));
  };

  const renderFormation = () => {
    const r = s.release;
    if (!r) { formationBox.replaceChildren(h("p", { class: "muted" }, "Nothing to scale.")); return; }
    const counts = s.formations[r.id] || {};
    const types = Object.keys(r.processes || {}).sort();
    if (!ctx.canAct) {
      const all = Object.fromEntries(types.map((t) => [t, counts[t] || 0]));
      formationBox.replaceChildren(h("p", {}, processes(all)));
      return;
    }
    const inputs = types.map((t) => h("input", { type: "number", min: "0", max: "10000",
      id: `scale-${t}`, name: t, value: String(counts[t] || 0) }));
    const form = h("form", { class: "inline", onsubmit: async (e) => {
      e.preventDefault();
      const wanted = Object.fromEntries(inputs.map((i) => [i.name, Number(i.value)]));
      try {
        await api(`/apps/${s.app.id}/formations/${r.id}`, { method: "PUT", body: { processes: wanted } });
        ctx.clearAlert();
      } catch (err) { ctx.alert(`Scaling was refused: ${err.message}`); }
    } }, types.map((t, n) => h("label", { for: `scale-${t}` }, `${t} processes`, inputs[n])),
      h("button", { type: "submit", class: "primary" }, "Scale"));
    formationBox.replaceChildren(types.length ? form : h("p", { class: "muted" }, "No process types."));
  };

  const renderJobs = () => {
    const jobs = [...s.jobs.values()].sort((a, b) => (b.created_at || "").localeCompare(a.created_at || "")).slice(0, 50);
    jobsBox.replaceChildren(table(["Type", "Job", "State", "Updated"], jobs.map((j) => h("tr", { "data-job": j.id },
      h("td", {}, j.type || "run"), h("td", { class: "mono" }, short(j.uuid || j.id)),
      h("td", {}, stateCell(j.state)), h("td", {}, time(j.updated_at))
    )), "No jobs."));
  };

  const renderDeployments = () => {
    const rows = [...s.deployments.values()].sort((a, b) => (b.created_at || "").localeCompare(a.created_at || ""))
      .slice(0, 10).map((d) => h("tr", { "data-deployment": d.id },
        h("td", { class: "mono" }, short(d.id)), h("td", {}, stateCell(d.status)),
        h("td", { class: "mono" }, `${short(d.old_release)} → ${short(d.new_release)}`),
        h("td", { class: "progress" }, (d.steps || []).slice(-1)[0] || "—")));
    deployBox.replaceChildren(table(["Deployment", "Status", "Releases", "Progress"], rows, "No deployments."));
  };

  const renderRoutes = () => {
    routesBox.replaceChildren(table(["Type", "Route", "Service"], [...s.routes.values()].map((r) =>
      h("tr", {}, h("td", {}, r.type), h("td", {}, r.type === "tcp" ? `:${r.port}` : `${r.domain}${r.path || "/"}`),
        h("td", {}, r.service))), "No routes."));
    resourcesBox.replaceChildren(table(["Resource", "Provider", "Env"], [...s.resources.values()].map((r) =>
      h("tr", {}, h("td", { class: "mono" }, short(r.id)), h("td", { class: "mono" }, short(r.provider)),
        h("td", {}, Object.keys(r.env || {}).sort().join(", ") || "—"))), "No resources."));
  };

  const renderAll = () => {
    title.textContent = `App ${s.app.name}`;
    renderRelease(); renderFormation(); renderJobs(); renderDeployments(); renderRoutes();
  };

  const apply = (ev) => {
    const d = ev.data || {};
    switch (ev.object_type) {
      case "app": s.app = d; return null;
      case "app_deletion": ctx.alert(`The app ${s.app.name} was deleted.`); return null;
      case "app_release": s.release = d.release; return "release";
      case "release": return null;
      case "scale": s.formations[d.release] = d.processes || {}; return "formation";
      case "job": s.jobs.set(d.id, d); return "jobs";
      case "deployment": {
        const dep = s.deployments.get(d.deployment) || { id: d.deployment, created_at: ev.created_at,
          old_release: d.old_release, new_release: d.release, steps: [] };
        dep.status = d.status;
        dep.steps = dep.steps || [];
        if (d.job_type) dep.steps.push(`${d.job_type} ${d.job_state}`);
        if (d.error) dep.steps.push(d.error);
        s.deployments.set(d.deployment, dep);
        return "deployments";
      }
      case "route": s.routes.set(d.id, d); return "routes";
      case "route_deletion": s.routes.delete(ev.object_id); return "routes";
      case "resource": s.resources.set(d.id, d); return "routes";
      case "resource_deletion": case "resource_app_deletion": s.resources.delete(ev.object_id); return "routes";
    }
    return null;
  };

  const onBatch = (e) => {
    if (since === Infinity) { pending.push(...e.detail); return; }
    const touched = new Set();
    for (const ev of e.detail) {
      if (ev.id <= since || !s.app || ev.app !== s.app.id) continue;
      touched.add(apply(ev));
    }
    if (touched.has("release")) { renderRelease(); renderFormation(); }
    else if (touched.has("formation")) renderFormation();
    if (touched.has("jobs")) renderJobs();
    if (touched.has("deployments")) renderDeployments();
    if (touched.has("routes")) renderRoutes();
  };
  ctx.stream.addEventListener("batch", onBatch);

  const base = `/apps/${encodeURIComponent(ref)}`;
  load([base, `${base}/release`, `${base}/formations`, `${base}/jobs`, `${base}/routes`,
    `${base}/resources`, `${base}/deployments`]).then(({ docs, position }) => {
    const [app, release, formations, jobs, routes, resources, deployments] = docs;
    if (!app) { title.textContent = "No such app"; return; }
    s.app = app; s.release = release;
    for (const f of formations || []) s.formations[f.release] = f.processes || {};
    for (const j of jobs || []) s.jobs.set(j.id, j);
    for (const r of routes || []) s.routes.set(r.id, r);
    for (const r of resources || []) s.resources.set(r.id, r);
    for (const d of deployments || []) s.deployments.set(d.id, { ...d, steps: [] });
    since = position;
    renderAll();
    onBatch({ detail: pending.splice(0) });
    logSource = new EventSource(`${base}/log?follow=true&lines=100`);
    logSource.onmessage = (m) => {
      const doc = JSON.parse(m.data);
      if (doc.event !== "message") return;
      log.append(`${doc.data.process_type || "run"}: ${doc.data.msg}\n`);
      while (log.childNodes.length > 500) log.firstChild.remove();
      log.scrollTop = log.scrollHeight;
    };
  });
  return { stop: () => {
    if (ctx.stream) ctx.stream.removeEventListener("batch", onBatch);
    if (logSource) logSource.close();
  } };
}
