// The dashboard's Environments tab: each environment's state, run number and task tree coloured by task
// state, and the events env/'s state machine allows (sent by the server as `allowed`) as buttons. Loaded
// after app.js, whose helpers ($, el, schedule, buildTree) and state it uses; app.js calls mergeEnv and
// renderEnvs once the page has loaded.
"use strict";

// Task states of an environment, the order their counts are shown in.
const ENV_TASK_STATES = ["RUNNING", "CONFIGURED", "STANDBY", "ERROR", "DONE", "INVARIANT"];
const ENV_RESULTS_KEPT = 10;

function envDuration(ms) {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(2)} s`;
}

/** The record that wins, as env/records.ts decides: highest epoch, then seq, then update time. */
function newerEnv(a, b) {
  if (a.epoch !== b.epoch) return a.epoch > b.epoch;
  if (a.seq !== b.seq) return a.seq > b.seq;
  return a.updatedAt > b.updatedAt;
}

function mergeEnv(v) {
  const have = state.envs.get(v.id);
  if (have && !newerEnv(v, have)) return;
  // Destroyed ones stay as tombstones, so that an older copy arriving late cannot bring them back.
  state.envs.set(v.id, v);
  renderEnvsSoon();
}

function envPills(counts) {
  return ENV_TASK_STATES.filter((s) => counts[s]).map((s) =>
    el("span", { class: `pill e-${s}` }, `${counts[s]} ${s}`)
  );
}

function renderEnvs() {
  const list = [...state.envs.values()].filter((v) => !v.destroyed).sort((a, b) => a.createdAt - b.createdAt);
  if (!list.some((v) => v.id === state.envSelected)) state.envSelected = list[0]?.id ?? "";
  $("#envs-empty").hidden = list.length > 0;
  $("#envs tbody").replaceChildren(...list.map((v) => {
    const t = v.lastTransition;
    return el(
      "tr",
      {
        dataset: { env: v.id, state: v.state },
        class: v.id === state.envSelected ? "selected" : "",
        onclick: () => {
          state.envSelected = v.id;
          renderEnvs();
        },
      },
      el("td", {}, v.id),
      el("td", {}, el("span", { class: `badge e-${v.state}` }, v.state)),
      el("td", { class: "run" }, v.runNumber ?? "-"),
      el("td", {}, `${v.tasks.length} `, el("span", { class: `pill e-${v.taskState}` }, v.taskState)),
      el(
        "td",
        { title: t ? new Date(t.startedAt).toISOString() : "" },
        t ? `${t.event} ${t.from} → ${t.to} ${t.ok ? "ok" : "failed"}` : "-",
      ),
      el("td", {}, t ? envDuration(t.ms) : "-"),
      el("td", {}, t?.by ?? "-"),
    );
  }));
  renderEnv();
}

const renderEnvsSoon = schedule(renderEnvs);

/** The selected environment: its state, run, the events its state allows as buttons, its task tree. */
function renderEnv() {
  const found = state.envs.get(state.envSelected);
  const v = found?.destroyed ? undefined : found;
  const box = $("#env");
  box.hidden = !v;
  if (!v) return;
  box.dataset.env = v.id;
  box.dataset.state = v.state;
  $("#env-title").textContent = `${v.id} (topology ${v.topologyId})`;
  const badge = $("#env-state");
  badge.textContent = v.state;
  badge.className = `badge e-${v.state}`;
  const run = $("#env-run");
  run.textContent = v.runNumber === null ? "no run yet" : `run ${v.runNumber}`;
  run.dataset.run = v.runNumber ?? "";
  $("#env-progress").textContent = v.controller
    ? `${v.controller.event} in progress, asked by ${v.controller.by}`
    : "";
  $("#env-reason").textContent = v.reason ?? "";
  const busy = state.envBusy || !!v.controller;
  $("#env-buttons").replaceChildren(
    ...(v.allowed.length ? [] : [el("span", { class: "meta" }, "no event leaves DONE")]),
    ...v.allowed.map((event) => {
      const b = el(
        "button",
        { type: "button", dataset: { event }, onclick: () => controlEnv(v.id, event) },
        event,
      );
      b.disabled = busy;
      return b;
    }),
  );
  const root = buildTree(v.tasks);
  const render = (node) => {
    const items = [
      ...[...node.children.values()].map((k) => ({ node: k })),
      ...node.tasks.map((t) => ({ task: t })),
    ];
    const out = items.slice(0, CHILDREN_SHOWN).map((item) => {
      if (item.task) return envTaskRow(item.task);
      const k = item.node;
      return el(
        "div",
        { class: "node", dataset: { node: k.key } },
        el("div", { class: "row" }, el("b", {}, k.name), ...envPills(k.counts)),
        ...render(k),
      );
    });
    if (items.length > CHILDREN_SHOWN) {
      out.push(el("div", { class: "meta" }, `… and ${items.length - CHILDREN_SHOWN} more`));
    }
    return out;
  };
  $("#env-tree").replaceChildren(
    el("div", { class: "meta" }, `${v.tasks.length} task(s) `, ...envPills(root.counts)),
    ...render(root),
  );
}

function envTaskRow(t) {
  return el(
    "div",
    { class: "node task", dataset: { path: t.path, state: t.state } },
    el(
      "div",
      { class: "row" },
      el("span", { class: `dot e-${t.state}` }),
      el("span", {}, t.path.split("/").at(-1)),
      el("span", { class: "state meta" }, t.state),
      el("span", { class: "meta" }, `${t.mode}${t.critical ? ", critical" : ""}`),
      t.reason ? el("span", { class: "error" }, t.reason) : "",
    ),
  );
}

/** `name=value …` → {name: value}; throws on a word without "=". */
function parseEnvArgs(text) {
  const args = {};
  for (const word of text.trim().split(/\s+/).filter(Boolean)) {
    const i = word.indexOf("=");
    if (i <= 0) throw new Error(`"${word}" is not name=value`);
    args[word.slice(0, i)] = word.slice(i + 1);
  }
  return args;
}

/** Sends an event as `shoal env control` does and shows what it did, or why it was refused. */
async function controlEnv(id, event) {
  const out = $("#env-result");
  const entry = el(
    "div",
    { class: "sent", dataset: { event } },
    el("div", { class: "meta" }, `→ ${event} "${id}"`),
  );
  out.prepend(entry);
  while (out.children.length > ENV_RESULTS_KEPT) out.lastChild.remove();
  state.envBusy = true;
  renderEnv();
  try {
    const res = await fetch("/api/env/control", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ id, event, args: parseEnvArgs($("#env-args").value) }),
    });
    const body = await res.json().catch(() => ({ error: `HTTP ${res.status}` }));
    if (body.env) mergeEnv(body.env);
    if (!res.ok) {
      entry.append(el("div", { class: "result error", dataset: { status: res.status } }, body.error));
      return;
    }
    const t = body.transition;
    const ok = body.answers.filter((a) => a.ok).length;
    entry.append(
      el(
        "div",
        { class: "result ok", dataset: { status: res.status } },
        `${event}: ${t.from} → ${body.env.state} in ${envDuration(t.ms)}` +
          (body.env.state === "RUNNING" && body.env.runNumber !== null ? `, run ${body.env.runNumber}` : "") +
          (body.answers.length ? `, ${ok}/${body.answers.length} task(s) answered ok` : "") +
          (body.hooks.length ? `, ${body.hooks.length} hook(s)` : ""),
      ),
      ...body.warnings.map((w) => el("div", { class: "error" }, `warning: ${w}`)),
    );
  } catch (err) {
    entry.append(el("div", { class: "result error" }, err.message));
  } finally {
    state.envBusy = false;
    renderEnv();
  }
}
