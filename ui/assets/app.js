// The shoal dashboard. State comes from /api/* once, then only from the server-sent event stream
// (/api/events): the page never polls. Trees stay collapsed past a few hundred tasks and render at
// most CHILDREN_SHOWN children per node, so 10,000 tasks stay usable.
"use strict";

const CHILDREN_SHOWN = 200;
const AUTO_EXPAND_TASKS = 300;
const CHART_SECONDS = 120;
const LOG_MAX_CHARS = 200_000;

const $ = (sel) => document.querySelector(sel);
const el = (tag, props = {}, ...children) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "dataset") Object.assign(e.dataset, v);
    else if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
};

const state = {
  session: "",
  agents: [],
  topologies: new Map(), // id → record (no source)
  tasks: new Map(), // topologyId → Map(path → task)
  selected: "",
  expanded: new Set(),
  shown: new Map(), // tree node key → children shown
  kv: new Map(), // topologyId → Map("key\0scope\0sender" → entry), of every topology heard of
  spawns: 0,
  kvWrites: 0,
  log: undefined, // EventSource of the followed task
  envs: new Map(), // id → environment view (destroyed ones kept, not shown)
  envSelected: "",
  envBusy: false, // a control sent from this page is under way
};

// ---- helpers ----

function shortId(id) {
  return id.length > 12 ? `${id.slice(0, 6)}…${id.slice(-6)}` : id;
}

function duration(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

/** The state a person sees: an exit with a non-zero code or a signal is a crash. */
function shownState(t) {
  if (t.state === "exited") return t.exitCode === 0 && !t.signal ? "done" : "crashed";
  return t.state;
}

async function api(path, init) {
  const res = await fetch(path, init);
  const body = await res.json().catch(() => ({ error: `HTTP ${res.status}` }));
  if (!res.ok) throw new Error(body.error ?? `HTTP ${res.status}`);
  return body;
}

function schedule(fn) {
  let queued = false;
  return () => {
    if (queued) return;
    queued = true;
    setTimeout(() => {
      queued = false;
      fn();
    }, 100);
  };
}

// ---- agents ----

function renderAgents() {
  const body = $("#agents tbody");
  const now = Date.now();
  body.replaceChildren(...state.agents.map((a) => {
    const live = a.state === "alive" || a.state === "suspect";
    return el(
      "tr",
      { dataset: { agent: a.id, state: a.state } },
      el("td", {}, a.host),
      el("td", { title: a.id }, shortId(a.id)),
      el("td", { class: "state" }, a.state),
      el("td", {}, a.slots.total - a.slots.free),
      el("td", {}, a.slots.free),
      el("td", {}, a.load.toFixed(2)),
      el("td", {}, a.version),
      el("td", {}, live ? duration(now - a.startedAt) : `gone ${duration(now - a.lastSeen)} ago`),
      el("td", {}, a.metrics ?? ""),
    );
  }));
  const alive = state.agents.filter((a) => a.state === "alive");
  const free = alive.reduce((n, a) => n + a.slots.free, 0);
  const total = alive.reduce((n, a) => n + a.slots.total, 0);
  $("#summary").textContent = `${alive.length} agent(s) alive, ${free}/${total} slots free`;
}

// ---- topologies and their task trees ----

function renderTopologyList() {
  const select = $("#topology");
  const records = [...state.topologies.values()].sort((a, b) =>
    (a.state === b.state ? 0 : a.state === "active" ? -1 : 1) || b.updatedAt - a.updatedAt
  );
  if (!state.selected || !state.topologies.has(state.selected)) {
    state.selected = records.find((r) => r.state === "active")?.id ?? records[0]?.id ?? "";
  }
  select.replaceChildren(...records.map((r) => {
    const o = el("option", { value: r.id }, `${r.id} (${r.name}, ${r.state}, ${r.tasks} tasks)`);
    if (r.id === state.selected) o.selected = true;
    return o;
  }));
  const r = state.topologies.get(state.selected);
  $("#topology-info").textContent = r
    ? `epoch ${r.epoch}, version ${r.version}, commander ${shortId(r.commander)}, file ${r.file}`
    : "no topology yet: activate one with shoal topology activate";
}

/** The tree of a topology's task paths: groups, collections and tasks as nested nodes. */
function buildTree(tasks) {
  const root = { key: "", name: "", children: new Map(), tasks: [], counts: {} };
  for (const t of tasks) {
    const parts = t.path.split("/");
    let node = root;
    const s = shownState(t);
    root.counts[s] = (root.counts[s] ?? 0) + 1;
    for (let i = 0; i < parts.length - 1; i++) {
      const key = parts.slice(0, i + 1).join("/");
      let next = node.children.get(parts[i]);
      if (!next) {
        next = { key, name: parts[i], children: new Map(), tasks: [], counts: {} };
        node.children.set(parts[i], next);
      }
      next.counts[s] = (next.counts[s] ?? 0) + 1;
      node = next;
    }
    node.tasks.push(t);
  }
  return root;
}

function pills(counts) {
  const order = ["running", "starting", "restarting", "crashed", "failed", "lost", "done", "stopped"];
  return order.filter((s) => counts[s]).map((s) => el("span", { class: `pill s-${s}` }, `${counts[s]} ${s}`));
}

function renderTree() {
  const map = state.tasks.get(state.selected) ?? new Map();
  const problems = $("#only-problems").checked;
  const all = [...map.values()];
  const tasks = problems ? all.filter((t) => ["crashed", "failed", "lost"].includes(shownState(t))) : all;
  const root = buildTree(tasks);
  const auto = tasks.length <= AUTO_EXPAND_TASKS;
  const render = (node, depth) => {
    const kids = [...node.children.values()];
    const items = [...kids.map((k) => ({ node: k })), ...node.tasks.map((t) => ({ task: t }))];
    const limit = state.shown.get(node.key) ?? CHILDREN_SHOWN;
    const out = items.slice(0, limit).map((item) => {
      if (item.task) return taskRow(item.task);
      const k = item.node;
      const open = state.expanded.has(k.key) || (auto && !state.expanded.has(`-${k.key}`)) || depth === 0;
      const row = el(
        "div",
        {
          class: "row",
          onclick: () => {
            if (open) {
              state.expanded.delete(k.key);
              state.expanded.add(`-${k.key}`);
            } else {
              state.expanded.add(k.key);
              state.expanded.delete(`-${k.key}`);
            }
            renderTree();
          },
        },
        el("span", {}, open ? "▾" : "▸"),
        el("b", {}, k.name),
        ...pills(k.counts),
      );
      return el(
        "div",
        { class: "node", dataset: { node: k.key } },
        row,
        ...(open ? render(k, depth + 1) : []),
      );
    });
    if (items.length > limit) {
      out.push(el("div", {
        class: "more",
        onclick: () => {
          state.shown.set(node.key, limit + CHILDREN_SHOWN);
          renderTree();
        },
      }, `show ${Math.min(CHILDREN_SHOWN, items.length - limit)} more of ${items.length - limit}…`));
    }
    return out;
  };
  const tree = $("#tree");
  const top = el("div", {}, el("div", { class: "meta" }, `${all.length} task(s) `, ...pills(root.counts)));
  tree.replaceChildren(top, ...render(root, 0));
}

function taskRow(t) {
  const s = shownState(t);
  const name = t.path.split("/").at(-1);
  const detail = s === "crashed"
    ? (t.signal ? `signal ${t.signal}` : `exit ${t.exitCode}`)
    : s === "failed"
    ? t.reason ?? ""
    : s === "done"
    ? "exit 0"
    : t.pid
    ? `pid ${t.pid}`
    : "";
  return el(
    "div",
    { class: "node task", dataset: { path: t.path, state: s }, onclick: () => followLog(t) },
    el(
      "div",
      { class: "row" },
      el("span", { class: `dot s-${s}` }),
      el("span", {}, name),
      el("span", { class: "state meta" }, s),
      el("span", { class: "meta" }, detail),
      t.restarts ? el("span", { class: "meta" }, `${t.restarts} restart(s)`) : "",
      el("span", { class: "meta" }, `on ${t.host || shortId(t.agent)}`),
    ),
  );
}

const renderTreeSoon = schedule(renderTree);

async function loadTasks(topologyId) {
  const { tasks } = await api(`/api/tasks?topology=${encodeURIComponent(topologyId)}`);
  const map = new Map(tasks.map((t) => [t.path, t]));
  // Tasks placed but not yet reported by an agent still belong in the tree.
  const r = state.topologies.get(topologyId);
  for (const [agent, paths] of Object.entries(r?.placement ?? {})) {
    for (const path of paths) {
      if (!map.has(path)) {
        map.set(path, { topologyId, path, state: "starting", restarts: 0, agent, host: "" });
      }
    }
  }
  state.tasks.set(topologyId, map);
  if (topologyId === state.selected) renderTreeSoon();
}

function onTaskEvent(e) {
  if (!e.topologyId) return;
  let map = state.tasks.get(e.topologyId);
  if (!map) {
    map = new Map();
    state.tasks.set(e.topologyId, map);
  }
  if (e.type === "tasks:lost") {
    for (const path of e.paths ?? []) {
      const t = map.get(path);
      if (t) t.state = "lost";
    }
  } else if (e.type === "tasks:replaced") {
    void loadTasks(e.topologyId).catch(() => {});
    return;
  } else if (e.path) {
    const t = map.get(e.path) ?? { topologyId: e.topologyId, path: e.path, restarts: 0 };
    Object.assign(t, { id: e.id ?? t.id, agent: e.agent ?? t.agent, host: e.host ?? t.host });
    if (e.type === "task:started") {
      Object.assign(t, { state: "running", pid: e.pid, restarts: e.restarts, startedAt: e.at });
      delete t.exitCode;
      delete t.signal;
      state.spawns++;
    } else if (e.type === "task:exited") {
      Object.assign(t, { exitCode: e.code, signal: e.signal });
      t.state = e.willRestart ? "restarting" : e.stopped ? "stopped" : "exited";
    } else if (e.type === "task:failed") {
      Object.assign(t, { state: "failed", reason: e.reason });
    }
    map.set(e.path, t);
  }
  if (e.topologyId === state.selected) renderTreeSoon();
}

function followLog(t) {
  state.log?.close();
  const title = $("#log-title");
  const text = $("#log-text");
  title.textContent = `${t.path} on ${t.host || shortId(t.agent)}`;
  text.textContent = "";
  text.dataset.path = t.path;
  const q = new URLSearchParams({ topology: t.topologyId, path: t.path, agent: t.agent });
  const source = new EventSource(`/api/logs?${q}`);
  state.log = source;
  source.addEventListener("log", (m) => {
    const { text: chunk } = JSON.parse(m.data);
    const pinned = text.scrollTop + text.clientHeight >= text.scrollHeight - 4;
    text.textContent = (text.textContent + chunk).slice(-LOG_MAX_CHARS);
    if (pinned) text.scrollTop = text.scrollHeight;
  });
  source.addEventListener("failed", (m) => {
    text.append(el("span", { class: "error" }, `\n[log unavailable: ${JSON.parse(m.data).error}]\n`));
    source.close();
  });
  source.addEventListener("end", () => source.close());
}

// ---- key-values ----

function kvKey(e) {
  return `${e.key}\0${e.scope}\0${e.sender}`;
}

function kvOf(topologyId) {
  let m = state.kv.get(topologyId);
  if (!m) {
    m = new Map();
    state.kv.set(topologyId, m);
  }
  return m;
}

/** Keeps the newer of each value: events may come before the page knows its topology, or race a load. */
function keepNewer(entries) {
  for (const e of entries) {
    const m = kvOf(e.topologyId);
    const have = m.get(kvKey(e));
    if (!have || have.version < e.version) m.set(kvKey(e), e);
  }
}

function mergeKv(entries) {
  state.kvWrites += entries.length;
  keepNewer(entries);
  renderKvSoon();
}

function renderKv() {
  const rows = [...kvOf(state.selected).values()].sort((a, b) =>
    a.key.localeCompare(b.key) || a.path.localeCompare(b.path)
  );
  const shown = rows.slice(0, 2000);
  $("#kv tbody").replaceChildren(...shown.map((e) =>
    el(
      "tr",
      { dataset: { key: e.key, writer: e.path }, class: e.deleted ? "deleted" : "" },
      el("td", {}, e.key),
      el("td", {}, e.scope || "global"),
      el("td", {}, e.deleted ? "(deleted)" : e.value),
      el("td", { title: e.sender }, e.path),
      el("td", { title: e.version }, new Date(Number(e.version.split(".")[0])).toISOString().slice(11, 23)),
    )
  ));
  $("#kv-info").textContent = `${rows.length} value(s) in topology ${state.selected || "(none)"}` +
    (rows.length > shown.length ? `, first ${shown.length} shown` : "");
}

const renderKvSoon = schedule(renderKv);

async function loadKv() {
  if (state.selected) {
    const { entries } = await api(`/api/kv?topology=${encodeURIComponent(state.selected)}`);
    keepNewer(entries);
  }
  renderKv();
}

// ---- commands ----

async function sendCommand(ev) {
  ev.preventDefault();
  const out = $("#replies");
  const button = $("#cmd-send");
  button.disabled = true;
  const payload = $("#cmd-payload").value;
  const group = el(
    "div",
    { class: "sent" },
    el("div", { class: "meta" }, `→ ${payload} (condition "${$("#cmd-condition").value}")`),
  );
  out.prepend(group);
  try {
    const r = await api("/api/cmd", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        topologyId: state.selected,
        condition: $("#cmd-condition").value,
        payload,
        waitReplies: $("#cmd-wait").value,
        timeoutS: Number($("#cmd-timeout").value || 5),
      }),
    });
    const block = el("div", { class: "result", dataset: { id: r.id } });
    for (const x of r.replies) {
      block.append(
        el(
          "div",
          { class: "reply" },
          el("b", {}, x.host ? `${x.host} (agent)` : x.path),
          el("pre", {}, x.text),
        ),
      );
    }
    block.append(
      el(
        "div",
        { class: "meta" },
        `${r.replies.length} repl${r.replies.length === 1 ? "y" : "ies"}${r.timedOut ? ", timed out" : ""}`,
      ),
    );
    group.append(block);
  } catch (err) {
    group.append(el("div", { class: "error" }, err.message));
  } finally {
    button.disabled = false;
  }
}

// ---- charts ----

function makeChart(target, label, color) {
  const xs = [];
  const ys = [];
  const width = Math.min(400, Math.max(240, (globalThis.innerWidth - 140) / 3));
  const chart = new uPlot(
    {
      width,
      height: 120,
      legend: { show: false },
      scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, Math.max(1, max * 1.1)] } },
      series: [{}, { label, stroke: color, fill: `${color}22`, width: 1.5 }],
      axes: [{ size: 24 }, { size: 36 }],
    },
    [xs, ys],
    target,
  );
  return {
    push(t, y) {
      xs.push(t);
      ys.push(y);
      if (xs.length > CHART_SECONDS) {
        xs.shift();
        ys.shift();
      }
      chart.setData([xs, ys]);
    },
  };
}

function startCharts() {
  const running = makeChart($("#chart-running"), "running", "#2e9d4f");
  const spawns = makeChart($("#chart-spawns"), "spawns/s", "#3d6fb6");
  const kv = makeChart($("#chart-kv"), "writes/s", "#b6573d");
  // Advances the charts' time axis; the figures themselves came in through the event stream.
  setInterval(() => {
    const t = Math.floor(Date.now() / 1000);
    let n = 0;
    for (const map of state.tasks.values()) {
      for (const task of map.values()) if (task.state === "running") n++;
    }
    running.push(t, n);
    spawns.push(t, state.spawns);
    kv.push(t, state.kvWrites);
    state.spawns = 0;
    state.kvWrites = 0;
  }, 1000);
}

// ---- wiring ----

function logEvent(e) {
  const box = $("#events");
  const line = `${new Date(e.at ?? Date.now()).toISOString().slice(11, 23)} ${e.type} ${e.envId ?? ""} ${
    e.path ?? e.host ?? ""
  } ${e.type === "task:exited" ? (e.signal ?? `code ${e.code}`) : ""}${e.envId && e.state ? e.state : ""}\n`;
  box.textContent = (line + box.textContent).slice(0, 100_000);
}

function connect() {
  const live = $("#live");
  const source = new EventSource("/api/events");
  source.onopen = () => {
    live.className = "on";
    live.textContent = "live";
  };
  source.onerror = () => {
    live.className = "off";
    live.textContent = "reconnecting…";
  };
  source.addEventListener("event", (m) => {
    const { event } = JSON.parse(m.data);
    logEvent(event);
    if (event.type.startsWith("task")) onTaskEvent(event);
  });
  source.addEventListener("agents", (m) => {
    state.agents = JSON.parse(m.data).agents;
    renderAgents();
  });
  source.addEventListener("topology", (m) => {
    const { topology } = JSON.parse(m.data);
    const had = state.topologies.get(topology.id);
    if (
      had && had.version >= topology.version && had.epoch >= topology.epoch && had.state === topology.state
    ) {
      return;
    }
    state.topologies.set(topology.id, topology);
    renderTopologyList();
    void loadTasks(topology.id).catch(() => {});
  });
  source.addEventListener("kv", (m) => mergeKv(JSON.parse(m.data).entries));
  source.addEventListener("env", (m) => mergeEnv(JSON.parse(m.data).env));
}

async function main() {
  for (const b of document.querySelectorAll("#tabs button")) {
    b.addEventListener("click", () => {
      for (const x of document.querySelectorAll("#tabs button")) x.classList.toggle("active", x === b);
      for (const t of document.querySelectorAll(".tab")) {
        t.classList.toggle("active", t.id === `tab-${b.dataset.tab}`);
      }
    });
  }
  $("#topology").addEventListener("change", (ev) => {
    state.selected = ev.target.value;
    state.expanded.clear();
    state.shown.clear();
    renderTopologyList();
    renderTree();
    void loadTasks(state.selected).catch(() => {});
    void loadKv().catch(() => {});
  });
  $("#only-problems").addEventListener("change", renderTree);
  $("#cmd-form").addEventListener("submit", sendCommand);
  $("#env-form").addEventListener("submit", (ev) => ev.preventDefault());
  connect();
  startCharts();
  const s = await api("/api/state");
  state.session = s.session;
  $("#session").textContent = `session "${s.session}"`;
  state.agents = s.agents;
  renderAgents();
  for (const r of s.topologies) state.topologies.set(r.id, r);
  renderTopologyList();
  for (const v of s.environments) mergeEnv(v);
  renderEnvs();
  await Promise.all(s.topologies.filter((r) => r.state === "active").map((r) => loadTasks(r.id)));
  renderTree();
  await loadKv();
  document.body.dataset.ready = "true";
}

main().catch((err) => {
  document.body.prepend(el("div", { class: "error" }, `Dashboard failed: ${err.message}`));
});
