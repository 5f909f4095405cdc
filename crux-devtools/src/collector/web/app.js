// The crux devtools web viewer: a runs list and a run page (tree and timeline lenses),
// reading the collector's JSON API and polling its revision for live updates.
//
// Records are untrusted input: every text taken from them reaches the page as a text node
// or an attribute value set through the DOM (never as HTML), and the collector serves the
// page with a Content-Security-Policy that allows no inline script.
"use strict";

const POLL_MS = 1000;
const STATUSES = ["", "ok", "error", "running", "suspended", "cancelled", "timeout"];

// ---- DOM helpers -------------------------------------------------------------------

/** Builds an element; strings and numbers among `children` become text nodes. */
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    node.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

function runHref(runId, params) {
  const query = new URLSearchParams(params || {}).toString();
  return "#/runs/" + encodeURIComponent(runId) + (query ? "?" + query : "");
}

function fmtDuration(ms) {
  if (ms === null || ms === undefined) return "–";
  if (ms < 1000) return (Math.round(ms * 10) / 10) + "ms";
  if (ms < 60000) return (Math.round(ms / 100) / 10) + "s";
  return Math.floor(ms / 60000) + "m" + Math.round((ms % 60000) / 1000) + "s";
}

function fmtNumber(n) {
  return n === null || n === undefined ? "–" : Number(n).toLocaleString("en-US");
}

/** Milliseconds since the epoch of an ISO-8601 time with any number of fraction digits. */
function parseTime(text) {
  if (!text) return null;
  const m = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?(.*)$/.exec(text);
  if (!m) return null;
  const whole = Date.parse(m[1] + (m[3] || "Z"));
  if (Number.isNaN(whole)) return null;
  const fraction = m[2] ? Number("0." + m[2]) * 1000 : 0;
  return whole + fraction;
}

function valueText(v) {
  return typeof v === "string" ? v : JSON.stringify(v);
}

function statusBadge(status) {
  return el("span", { class: "status status-" + String(status).replace(/[^a-z_]/g, "") }, status);
}

// ---- API ---------------------------------------------------------------------------

class Unauthorized extends Error {}

async function api(path) {
  const headers = {};
  const token = sessionStorage.getItem("crux-token");
  if (token) headers.Authorization = "Bearer " + token;
  const response = await fetch(path, { headers, cache: "no-store" });
  if (response.status === 401) throw new Unauthorized("the collector needs its token");
  const body = await response.json();
  if (!response.ok) {
    const error = body && body.error ? body.error.message : "HTTP " + response.status;
    throw new Error(error);
  }
  return body;
}

// ---- Routing and live updates --------------------------------------------------------

const state = { revision: null, render: null, selected: null };

function route() {
  const hash = location.hash.replace(/^#/, "") || "/";
  const [path, query] = hash.split("?");
  const params = new URLSearchParams(query || "");
  const match = /^\/runs\/([^/]+)$/.exec(path);
  state.selected = params.get("span");
  if (match) {
    const runId = decodeURIComponent(match[1]);
    state.render = () => runPage(runId, params);
  } else {
    state.render = () => runsPage(params);
  }
  refresh();
}

let inFlight = false;
async function refresh() {
  if (inFlight) return;
  inFlight = true;
  try {
    await state.render();
  } catch (error) {
    showError(error);
  } finally {
    inFlight = false;
  }
}

async function poll() {
  try {
    const { revision } = await api("/api/revision");
    document.getElementById("live").classList.remove("offline");
    if (state.revision !== null && revision !== state.revision) {
      state.revision = revision;
      await refresh();
    }
    state.revision = revision;
  } catch (error) {
    document.getElementById("live").classList.add("offline");
  }
  setTimeout(poll, POLL_MS);
}

function showError(error) {
  const app = document.getElementById("app");
  if (error instanceof Unauthorized) {
    const input = el("input", { type: "password", placeholder: "CRUX_DEVTOOLS_TOKEN", id: "token" });
    app.replaceChildren(
      el("form", {
        class: "token",
        onsubmit: (e) => {
          e.preventDefault();
          sessionStorage.setItem("crux-token", input.value);
          refresh();
        },
      }, el("p", {}, "This collector needs its token."), input, el("button", { type: "submit" }, "Open")),
    );
    return;
  }
  app.replaceChildren(el("p", { class: "error-text" }, String(error.message || error)));
}

// ---- Runs list ----------------------------------------------------------------------

const FILTERS = ["q", "name", "status", "since", "until", "session", "user", "group"];

async function runsPage(params) {
  const query = new URLSearchParams();
  for (const key of ["q", "name", "status", "session", "user"]) {
    if (params.get(key)) query.set(key, params.get(key));
  }
  for (const key of ["since", "until"]) {
    // datetime-local values are local times; the API takes ISO-8601 with an offset.
    const value = params.get(key);
    if (value) query.set(key, new Date(value).toISOString());
  }
  const body = await api("/api/runs?" + query.toString());
  const app = document.getElementById("app");
  const focused = document.activeElement && document.activeElement.name;
  app.replaceChildren(filterBar(params), runsTable(body.runs, params.get("group")));
  if (body.searchTruncated) {
    app.appendChild(el("p", { class: "muted" }, "Search stopped early (at 200 matching runs, or, for a text without 3 ASCII characters in a row, after the newest runs): narrow the text or filter the runs."));
  }
  if (focused) {
    const input = app.querySelector('[name="' + focused + '"]');
    if (input) {
      input.focus();
      if (input.setSelectionRange && input.type === "search") input.setSelectionRange(input.value.length, input.value.length);
    }
  }
}

function filterBar(params) {
  let timer = null;
  const form = el("form", { class: "filters", id: "filters", onsubmit: (e) => e.preventDefault() });
  const apply = () => {
    const next = new URLSearchParams();
    for (const key of FILTERS) {
      const input = form.elements[key];
      if (input && input.value) next.set(key, input.value);
    }
    const hash = "#/" + (next.toString() ? "?" + next.toString() : "");
    if (location.hash !== hash) location.hash = hash;
  };
  const later = () => {
    clearTimeout(timer);
    timer = setTimeout(apply, 300);
  };
  const field = (label, input) => el("label", {}, label, input);
  const text = (name, placeholder, type) =>
    el("input", { name, type: type || "search", placeholder, value: params.get(name) || "", oninput: later, onchange: apply });
  const select = (name, options) => {
    const node = el("select", { name, onchange: apply },
      options.map(([value, label]) => el("option", { value, selected: (params.get(name) || "") === value }, label)));
    return node;
  };
  append(form, [
    field("Search", text("q", "span, attribute, event, error…")),
    field("Name", text("name", "run name")),
    field("Status", select("status", STATUSES.map((s) => [s, s || "any"]))),
    field("Since", text("since", "", "datetime-local")),
    field("Until", text("until", "", "datetime-local")),
    field("Session", text("session", "sessionId")),
    field("User", text("user", "userId")),
    field("Group", select("group", [["", "none"], ["session", "by session"], ["user", "by user"]])),
  ]);
  return form;
}

function runsTable(runs, group) {
  if (runs.length === 0) {
    return el("p", { class: "muted", id: "no-runs" },
      "No runs yet. Point a process at this collector with CRUX_DEVTOOLS_URL=" + location.origin);
  }
  const head = el("tr", {}, ["Name", "Status", "Duration", "Started", "Records", "Model calls", "Tokens", "Session", "User"]
    .map((h) => el("th", {}, h)));
  const rows = [];
  const key = group === "session" ? "sessionId" : group === "user" ? "userId" : null;
  const groups = new Map();
  for (const run of runs) {
    const k = key ? run[key] || "" : "";
    if (!groups.has(k)) groups.set(k, []);
    groups.get(k).push(run);
  }
  for (const [k, members] of groups) {
    if (key) {
      const tokens = members.reduce((sum, r) => sum + (r.totalTokens || 0), 0);
      const calls = members.reduce((sum, r) => sum + (r.modelCalls || 0), 0);
      rows.push(el("tr", { class: "group" }, el("td", { colspan: 9 },
        (group === "session" ? "session " : "user ") + (k || "(none)"),
        el("span", { class: "muted" }, " · " + members.length + " runs · " + calls + " model calls · " + fmtNumber(tokens) + " tokens"))));
    }
    for (const run of members) rows.push(runRow(run));
  }
  return el("table", { class: "runs", id: "runs" }, el("thead", {}, head), el("tbody", {}, rows));
}

function runRow(run) {
  const link = el("a", { href: runHref(run.runId), class: "run-link" }, run.name || "(no run:start)");
  return el("tr", { "data-run-id": run.runId, "data-status": run.status },
    el("td", {}, link, el("div", { class: "muted mono" }, run.runId)),
    el("td", {}, statusBadge(run.status)),
    el("td", { class: "num" }, fmtDuration(run.durationMs)),
    el("td", { class: "mono" }, run.startedAt || "–"),
    el("td", { class: "num" }, fmtNumber(run.records)),
    el("td", { class: "num" }, fmtNumber(run.modelCalls)),
    el("td", { class: "num", title: "input " + run.inputTokens + " · output " + run.outputTokens }, fmtNumber(run.totalTokens)),
    el("td", {}, run.sessionId ? el("a", { href: "#/?session=" + encodeURIComponent(run.sessionId) }, run.sessionId) : "–"),
    el("td", {}, run.userId ? el("a", { href: "#/?user=" + encodeURIComponent(run.userId) }, run.userId) : "–"),
  );
}

// ---- Run page -----------------------------------------------------------------------

async function runPage(runId, params) {
  const lens = params.get("lens") === "timeline" ? "timeline" : "tree";
  const all = params.get("all") === "1" || lens === "timeline";
  const body = await api("/api/runs/" + encodeURIComponent(runId) + "/view" + (all ? "?all=1" : ""));
  const { run, view } = body;
  const setParam = (key, value) => {
    const next = new URLSearchParams(params);
    if (value === null) next.delete(key);
    else next.set(key, value);
    location.hash = runHref(runId, Object.fromEntries(next));
  };
  const header = el("section", { class: "run-header", id: "run-header" },
    el("h1", {}, view.name, " ", statusBadge(view.status)),
    el("div", { class: "muted mono" }, view.runId, " · ", view.rootPrimitive),
    el("dl", { class: "facts" },
      fact("Duration", fmtDuration(view.durationMs)),
      fact("Started", view.startedAt || "–"),
      fact("Records", fmtNumber(view.records)),
      fact("Segments", view.segments.length),
      fact("Model calls", fmtNumber(run.modelCalls)),
      fact("Tokens", fmtNumber(run.totalTokens) + " (in " + fmtNumber(run.inputTokens) + " · out " + fmtNumber(run.outputTokens) + ")"),
      run.sessionId && fact("Session", el("a", { href: "#/?session=" + encodeURIComponent(run.sessionId) }, run.sessionId)),
      run.userId && fact("User", el("a", { href: "#/?user=" + encodeURIComponent(run.userId) }, run.userId)),
    ),
    view.error && errorBox(view.error),
    linksList(view.links),
    view.lifecycle.some((l) => l.type === "run:suspend" || l.type === "run:resume") && el("p", { class: "muted", id: "lifecycle" },
      view.lifecycle.map((l) => l.type + (l.reason ? ' "' + l.reason + '"' : "") + (l.status ? " " + l.status : "")).join(" → ")),
  );
  const tabs = el("nav", { class: "tabs" },
    el("a", { href: runHref(runId, { lens: "tree" }), class: lens === "tree" ? "active" : "", id: "lens-tree" }, "Tree"),
    el("a", { href: runHref(runId, { lens: "timeline" }), class: lens === "timeline" ? "active" : "", id: "lens-timeline" }, "Timeline"),
    lens === "tree" && el("label", { class: "toggle" },
      el("input", { type: "checkbox", checked: all, onchange: (e) => setParam("all", e.target.checked ? "1" : null) }),
      " every span (unfold boundaries)"),
  );
  const nodes = [];
  walk(view.spans, 0, (node, depth) => nodes.push([node, depth]));
  const selected = nodes.find(([n]) => n.spanId === state.selected) || nodes.find(([n]) => (n.via || []).some((v) => v.spanId === state.selected));
  const select = (spanId) => setParam("span", spanId);
  const body_ = lens === "tree" ? treeLens(view.spans, select) : timelineLens(view, nodes, select);
  const details = el("aside", { class: "details", id: "details" },
    selected ? spanDetails(selected[0], state.selected) : el("p", { class: "muted" }, "Select a span to see its attributes, events and errors."));
  document.getElementById("app").replaceChildren(
    el("p", {}, el("a", { href: "#/" }, "← all runs")),
    header, tabs, el("div", { class: "split" }, el("section", { class: "lens", id: "lens-" + lens + "-body" }, body_), details),
  );
}

function fact(label, value) {
  return el("div", {}, el("dt", {}, label), el("dd", {}, value));
}

function walk(nodes, depth, visit) {
  for (const node of nodes) {
    visit(node, depth);
    walk(node.children, depth + 1, visit);
  }
}

function errorBox(error) {
  return el("div", { class: "error-box" }, "✗ ", el("strong", {}, error.name || "Error"), ": ", error.message || "");
}

function linksList(links) {
  if (!links || links.length === 0) return null;
  return el("ul", { class: "links" }, links.map(linkItem));
}

function linkItem(link) {
  const other = link.other;
  const arrow = link.direction === "out" ? "↪ " : "↩ ";
  let target;
  if (other.kind === "run") {
    target = el("a", { href: runHref(other.id), class: "link-run" }, "run " + (other.runName ? '"' + other.runName + '" ' : "") + other.id);
  } else if (other.kind === "span" && other.runId) {
    target = el("a", { href: runHref(other.runId, { span: other.id }), class: "link-span" },
      "span " + (other.spanName ? '"' + other.spanName + '" ' : "") + other.id + (other.runName ? ' in run "' + other.runName + '"' : ""));
  } else {
    target = other.kind + " " + other.id;
  }
  const verb = link.direction === "out" ? link.edgeType + " " : link.edgeType + " by ";
  return el("li", { class: "link", "data-edge": link.edgeType }, arrow, verb, target);
}

function spanLine(node) {
  return [
    el("span", { class: "span-name" }, node.name),
    " ",
    el("span", { class: "primitive" }, node.primitive),
    node.details && node.details.model ? el("span", { class: "model" }, " " + node.details.model) : null,
    " ",
    statusBadge(node.status),
    " ",
    el("span", { class: "muted" }, fmtDuration(node.durationMs)),
    node.folded ? el("span", { class: "muted" }, " (folded)") : null,
  ];
}

function treeLens(spans, select) {
  const build = (nodes) => el("ul", { class: "tree" }, nodes.map((node) => {
    const item = el("li", { "data-span-id": node.spanId, class: node.spanId === state.selected ? "selected" : "" },
      el("button", { type: "button", class: "node", onclick: () => select(node.spanId) }, spanLine(node)),
      (node.via || []).map((v) => el("div", { class: "via", "data-span-id": v.spanId },
        el("button", { type: "button", class: "node", onclick: () => select(v.spanId) },
          "↳ via ", el("span", { class: "primitive" }, v.primitive), ' "', v.name, '"',
          v.details && v.details.functionPath ? " → " + v.details.functionPath : "", " ", statusBadge(v.status), " ", fmtDuration(v.durationMs)))),
      node.error && errorBox(node.error),
      linksList(node.links),
      node.missingParent && el("div", { class: "muted" }, "parent " + node.missingParent + " is not in the store"),
    );
    if (node.children.length) item.appendChild(build(node.children));
    return item;
  }));
  if (spans.length === 0) return el("p", { class: "muted" }, "No spans yet.");
  return build(spans);
}

function timelineLens(view, nodes, select) {
  const starts = nodes.map(([n]) => parseTime(n.startedAt)).filter((t) => t !== null);
  const runStart = parseTime(view.startedAt) ?? (starts.length ? Math.min(...starts) : 0);
  const ends = nodes.map(([n]) => {
    const s = parseTime(n.startedAt);
    return s === null ? null : s + (n.durationMs || 0);
  }).filter((t) => t !== null);
  const runEnd = Math.max(runStart + (view.durationMs || 0), ...ends, runStart + 1);
  const span = runEnd - runStart;
  const rows = nodes.map(([node, depth]) => {
    const start = parseTime(node.startedAt);
    const left = start === null ? 0 : ((start - runStart) / span) * 100;
    const width = node.durationMs === null || node.durationMs === undefined
      ? 100 - left
      : Math.max((node.durationMs / span) * 100, 0.4);
    return el("div", {
      class: "tl-row" + (node.spanId === state.selected ? " selected" : ""),
      "data-span-id": node.spanId,
      onclick: () => select(node.spanId),
    },
      el("div", { class: "tl-label", style: null, title: node.primitive },
        el("span", { class: "indent", "data-depth": Math.min(depth, 12) }), node.name),
      el("div", { class: "tl-track" },
        el("div", { class: "tl-bar status-bg-" + String(node.status).replace(/[^a-z_]/g, ""), "data-left": left.toFixed(2), "data-width": width.toFixed(2) },
          el("span", { class: left > 60 ? "tl-text tl-text-before" : "tl-text" }, node.primitive + " · " + fmtDuration(node.durationMs)))),
    );
  });
  const scale = el("div", { class: "tl-row tl-scale" }, el("div", { class: "tl-label" }, "0ms"),
    el("div", { class: "tl-track muted" }, "→ " + fmtDuration(span)));
  const container = el("div", { class: "timeline", id: "timeline" }, scale, rows);
  // Geometry is set through the CSSOM (the policy forbids inline style attributes).
  for (const bar of container.querySelectorAll(".tl-bar")) {
    bar.style.left = bar.dataset.left + "%";
    bar.style.width = bar.dataset.width + "%";
  }
  for (const indent of container.querySelectorAll(".indent")) {
    indent.style.width = Number(indent.dataset.depth) * 12 + "px";
  }
  if (nodes.length === 0) return el("p", { class: "muted" }, "No spans yet.");
  return container;
}

function spanDetails(node, spanId) {
  // A folded boundary is selected through the node carrying it.
  const shown = node.spanId === spanId ? node : (node.via || []).find((v) => v.spanId === spanId) || node;
  const table = (title, entries) => entries.length === 0 ? null : [
    el("h3", {}, title),
    el("table", { class: "kv" }, entries.map(([k, v]) => el("tr", {}, el("th", {}, k), el("td", { class: "mono" }, valueText(v))))),
  ];
  return [
    el("h2", {}, shown.name),
    el("div", {}, el("span", { class: "primitive" }, shown.primitive), " ", statusBadge(shown.status)),
    el("dl", { class: "facts" },
      fact("Span", el("span", { class: "mono" }, shown.spanId)),
      fact("Started", shown.startedAt || "–"),
      fact("Ended", shown.endedAt || "–"),
      fact("Duration", fmtDuration(shown.durationMs)),
    ),
    shown.error && errorBox(shown.error),
    table("Details", Object.entries(shown.details || {})),
    table("Attributes", Object.entries(shown.attributes || {})),
    table("Metrics", Object.entries(shown.metrics || {})),
    shown.events.length > 0 && [
      el("h3", {}, "Events"),
      el("ul", { class: "events" }, shown.events.map((e) => el("li", {},
        "• ", el("strong", {}, e.name), " ", el("span", { class: "muted" }, e.offsetMs === null ? e.timestamp : "+" + fmtDuration(e.offsetMs)),
        Object.keys(e.attributes || {}).length ? el("div", { class: "mono muted" }, Object.entries(e.attributes).map(([k, v]) => k + "=" + valueText(v)).join(" ")) : null))),
    ],
    (shown.artifacts || []).length > 0 && table("Artifacts", shown.artifacts.map((a) => [a.kind || "artifact", a.name || a.artifactId || JSON.stringify(a)])),
    linksList(shown.links),
  ];
}

window.addEventListener("hashchange", route);
window.addEventListener("DOMContentLoaded", () => {
  route();
  poll();
});
