// The omni-writer inspector: a hash-routed page over the daemon's JSON API (/api/...).
// Everything from the store is put in the page as text (textContent), never as HTML.
"use strict";

const view = document.getElementById("view");
let tailTimer = null;

// --- helpers --------------------------------------------------------------------------------

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key.startsWith("data-")) node.setAttribute(key, String(value));
    else node[key] = value;
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

async function api(endpoint, params) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params || {})) {
    if (value !== undefined && value !== null && value !== "") query.set(key, value);
  }
  const response = await fetch(`/api/${endpoint}?${query}`);
  const body = await response.json().catch(() => ({ error: `HTTP ${response.status}` }));
  if (!response.ok) throw new Error(body.error || `HTTP ${response.status}`);
  return body;
}

function show(...children) {
  view.replaceChildren(...children);
  view.dataset.state = "ready";
}

function failed(error) {
  show(el("p", { class: "error", "data-error": "1", text: error.message }));
  view.dataset.state = "error";
}

function link(text, hash) {
  return el("a", { href: hash, text });
}

function streamHash(type, id) {
  return `#/aggregate/${encodeURIComponent(type)}/${encodeURIComponent(id)}`;
}

function gist(payload) {
  if (!payload || typeof payload !== "object") return "";
  if (payload.hex !== undefined) return `<undecoded payload, ${payload.len} bytes>`;
  return Object.entries(payload)
    .filter(([, v]) => v !== null && typeof v !== "object")
    .map(([k, v]) => `${k}=${String(v).slice(0, 40)}`)
    .join(" ")
    .slice(0, 160);
}

function detail(title, value) {
  document.getElementById("detail-title").textContent = title;
  document.getElementById("detail-body").textContent = JSON.stringify(value, null, 2);
  document.getElementById("detail").hidden = false;
}
document.getElementById("detail-close").addEventListener("click", () => {
  document.getElementById("detail").hidden = true;
});

function eventRow(event, withAggregate) {
  return el("tr", { class: "row-click", "data-position": event.position, onclick: () => detail(`#${event.position} ${event.event_type}`, event) },
    el("td", { class: "num", text: event.position }),
    el("td", { text: event.timestamp }),
    el("td", { class: "num", text: event.version }),
    el("td", { class: `type-${event.event_type}`, text: event.event_type }),
    withAggregate ? el("td", {}, link(`${event.aggregate_type}/${event.aggregate_id}`, streamHash(event.aggregate_type, event.aggregate_id))) : null,
    el("td", {}, event.correlation_id ? link(event.correlation_id, `#/trace/${encodeURIComponent(event.correlation_id)}`) : ""),
    el("td", { class: "muted", text: gist(event.payload) }));
}

function eventTable(events, withAggregate) {
  return el("table", { class: "events" },
    el("thead", {}, el("tr", {},
      el("th", { class: "num", text: "position" }), el("th", { text: "timestamp" }), el("th", { class: "num", text: "ver" }),
      el("th", { text: "event type" }), withAggregate ? el("th", { text: "aggregate" }) : null,
      el("th", { text: "trace" }), el("th", { text: "payload" }))),
    el("tbody", {}, events.map((e) => eventRow(e, withAggregate))));
}

// --- views ----------------------------------------------------------------------------------

async function aggregatesView(params) {
  const [types, found] = await Promise.all([
    api("types"),
    api("aggregates", { type: params.get("type"), q: params.get("q"), offset: params.get("offset"), limit: 50 }),
  ]);
  const typeSelect = el("select", { name: "type" }, el("option", { value: "", text: "all types" }),
    types.types.map((t) => el("option", { value: t.aggregate_type, text: t.aggregate_type, selected: t.aggregate_type === params.get("type") })));
  const search = el("input", { name: "q", placeholder: "id contains…", value: params.get("q") || "" });
  const form = el("form", { class: "filters", onsubmit: (event) => {
    event.preventDefault();
    location.hash = `#/?${new URLSearchParams({ type: typeSelect.value, q: search.value })}`;
  } }, el("label", {}, "type", typeSelect), el("label", {}, "id", search), el("button", { type: "submit", text: "Search" }));
  const offset = Number(params.get("offset") || 0);
  const page = (to) => `#/?${new URLSearchParams({ type: params.get("type") || "", q: params.get("q") || "", offset: to })}`;
  show(
    el("h2", { text: "Aggregates" }),
    el("table", { class: "types" },
      el("thead", {}, el("tr", {}, el("th", { text: "aggregate type" }), el("th", { class: "num", text: "aggregates" }), el("th", { class: "num", text: "events" }))),
      el("tbody", {}, types.types.map((t) => el("tr", {},
        el("td", {}, link(t.aggregate_type, `#/?type=${encodeURIComponent(t.aggregate_type)}`)),
        el("td", { class: "num", text: t.aggregates }), el("td", { class: "num", text: t.events }))))),
    el("h3", { text: `${found.total} aggregates` }),
    form,
    el("table", { class: "aggregates" },
      el("thead", {}, el("tr", {}, el("th", { text: "aggregate" }), el("th", { class: "num", text: "version" }))),
      el("tbody", {}, found.aggregates.map((a) => el("tr", { "data-aggregate": `${a.aggregate_type}/${a.aggregate_id}` },
        el("td", {}, link(`${a.aggregate_type}/${a.aggregate_id}`, streamHash(a.aggregate_type, a.aggregate_id))),
        el("td", { class: "num", text: a.version }))))),
    el("div", { class: "pager" },
      offset > 0 ? link("← previous", page(Math.max(0, offset - 50))) : null,
      el("span", { class: "muted", text: `${offset + 1}–${offset + found.aggregates.length} of ${found.total}` }),
      offset + 50 < found.total ? link("next →", page(offset + 50)) : null));
}

async function aggregateView(type, id) {
  const stream = await api("stream", { type, id, limit: 500 });
  const stateBox = el("pre", { id: "state", text: "…" });
  const label = el("span", { id: "at" });
  const slider = el("input", { type: "range", min: 1, max: stream.version, value: stream.version });
  const loadState = async () => {
    label.textContent = `version ${slider.value} of ${stream.version}`;
    try {
      const state = await api("state", { type, id, at: slider.value });
      stateBox.textContent = JSON.stringify(state.state, null, 2);
      stateBox.dataset.version = state.version;
    } catch (error) {
      stateBox.textContent = error.message;
    }
  };
  slider.addEventListener("input", loadState);
  const correlation = stream.events.length ? stream.events[0].correlation_id : null;
  show(
    el("h2", { text: `${type}/${id}` }),
    el("p", { class: "muted" }, `version ${stream.version}`, correlation ? [" · trace ", link(correlation, `#/trace/${encodeURIComponent(correlation)}`)] : null),
    el("div", { class: "cols" },
      el("div", {}, el("h3", { text: "Events" }), eventTable(stream.events, false),
        stream.events.length < stream.version ? el("p", { class: "muted", text: `first ${stream.events.length} of ${stream.version} shown` }) : null),
      el("div", {}, el("h3", { text: "State" }), el("div", { class: "slider" }, slider, label), stateBox)));
  await loadState();
}

async function logView(params) {
  stopTail();
  const filters = {
    event_type: params.get("event_type") || "",
    aggregate_type: params.get("aggregate_type") || "",
    since: params.get("since") || "",
    until: params.get("until") || "",
  };
  const page = await api("log", { ...filters, from: params.get("from"), limit: 50 });
  const inputs = Object.fromEntries(Object.entries(filters).map(([name, value]) =>
    [name, el("input", { name, value, placeholder: name.includes("type") ? "any" : "RFC 3339, e.g. 2026-12-03T10:00:00Z" })]));
  const go = (extra) => `#/log?${new URLSearchParams({ ...Object.fromEntries(Object.entries(inputs).map(([k, i]) => [k, i.value])), ...extra })}`;
  const tail = el("input", { type: "checkbox", id: "tail" });
  const body = el("tbody", {}, page.events.map((e) => eventRow(e, true)));
  let after = page.events.length ? page.events[page.events.length - 1].position : page.last_position;
  tail.addEventListener("change", () => {
    stopTail();
    if (!tail.checked) return;
    tailTimer = setInterval(async () => {
      try {
        const fresh = await api("log", { ...filters, from: after + 1, limit: 200 });
        for (const event of fresh.events) body.append(eventRow(event, true));
        if (fresh.events.length) after = fresh.events[fresh.events.length - 1].position;
        else if (fresh.next === null) after = Math.max(after, fresh.last_position);
      } catch (error) {
        stopTail();
      }
    }, 1000);
  });
  if (params.get("tail") === "1") {
    // A link can open the log already tailing (#/log?tail=1).
    tail.checked = true;
    tail.dispatchEvent(new Event("change"));
  }
  show(
    el("h2", { text: "Global log" }),
    el("form", { class: "filters", onsubmit: (event) => { event.preventDefault(); location.hash = go({}); } },
      Object.entries(inputs).map(([name, input]) => el("label", {}, name.replace("_", " "), input)),
      el("button", { type: "submit", text: "Filter" }),
      el("label", {}, "live tail", tail)),
    el("div", { class: "pager" },
      page.from > 1 ? link("← older", go({ from: Math.max(1, page.from - 50) })) : null,
      el("span", { class: "muted", text: `from position ${page.from}, ${page.scanned} scanned, log ends at ${page.last_position}` }),
      page.next !== null ? link("newer →", go({ from: page.next })) : null),
    el("table", { class: "events" },
      el("thead", {}, el("tr", {}, ["position", "timestamp", "ver", "event type", "aggregate", "trace", "payload"].map((h) => el("th", { text: h })))),
      body));
}

function stopTail() {
  if (tailTimer) clearInterval(tailTimer);
  tailTimer = null;
}

async function traceView(id) {
  const input = el("input", { name: "id", placeholder: "pipeline-000001 or a trace id", value: id || "" });
  const form = el("form", { class: "filters", onsubmit: (event) => {
    event.preventDefault();
    location.hash = `#/trace/${encodeURIComponent(input.value.trim())}`;
  } }, el("label", {}, "trace or correlation id", input), el("button", { type: "submit", text: "Show" }));
  if (!id) {
    show(el("h2", { text: "Trace" }), form);
    return;
  }
  const trace = await api("trace", { id });
  const tree = el("div", { class: "tree", id: "trace-tree" }, trace.tree.map((node) =>
    el("div", {
      class: "node",
      "data-position": node.position,
      "data-parent": node.parent === null ? "" : node.parent,
      "data-depth": node.depth,
      "data-event-type": node.event_type,
      "data-event-id": node.event_id,
      onclick: () => detail(`#${node.position} ${node.event_type}`, node),
    },
    el("span", { class: "t", text: `+${(node.offset_ms / 1000).toFixed(3)}s` }),
    el("span", { class: "p", text: `#${node.position}` }),
    el("span", { class: "what", style: `padding-left: ${node.depth * 18}px` },
      el("span", { class: `type type-${node.event_type}`, text: node.event_type }),
      el("a", { class: "agg", href: streamHash(node.aggregate_type, node.aggregate_id), text: `${node.aggregate_type}/${node.aggregate_id} v${node.version}`, onclick: (e) => e.stopPropagation() }),
      el("span", { class: "gist", text: gist(node.payload) })))));
  show(
    el("h2", { text: `Trace ${trace.id}` }),
    form,
    el("p", { class: "muted", text: `${trace.events} events, ${trace.roots} root${trace.roots === 1 ? "" : "s"}${trace.truncated ? " (truncated)" : ""}; click an event for its payload` }),
    tree);
}

// --- routing --------------------------------------------------------------------------------

async function route() {
  stopTail();
  view.dataset.state = "loading";
  const [path, query] = location.hash.replace(/^#/, "").split("?");
  const params = new URLSearchParams(query || "");
  const parts = (path || "/").split("/").filter(Boolean).map(decodeURIComponent);
  try {
    if (parts[0] === "aggregate" && parts.length === 3) await aggregateView(parts[1], parts[2]);
    else if (parts[0] === "log") await logView(params);
    else if (parts[0] === "trace") await traceView(parts[1]);
    else await aggregatesView(params);
  } catch (error) {
    failed(error);
  }
}

async function refreshStatus() {
  try {
    const status = await api("status");
    document.getElementById("status").textContent =
      `${status.events} events · last ${status.last_position} · durable ${status.durable_position}${status.failure ? " · FAILED: " + status.failure : ""}`;
  } catch (error) {
    document.getElementById("status").textContent = error.message;
  }
}

window.addEventListener("hashchange", route);
route();
refreshStatus();
setInterval(refreshStatus, 3000);
