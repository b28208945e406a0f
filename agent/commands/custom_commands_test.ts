import {
  assert,
  assertEquals,
  assertRejects,
  assertStringIncludes,
  assertThrows,
} from "../../tests/_assert.ts";
import { waitFor } from "../../tests/_wait.ts";
import { createMeshNode, createSwarmKey } from "../../mesh/mod.ts";
import { startAgentCommands } from "./agent_commands.ts";
import {
  addressesAgents,
  matchesAgent,
  matchesCondition,
  matchesTool,
  parseCondition,
  type RoutableTask,
} from "./conditions.ts";
import { CMD_TOPIC, CmdRequestSchema, type Command, CustomCommands } from "./custom_commands.ts";
import { createLogger } from "../log.ts";
import * as v from "valibot";

Deno.test("cmd: DDS conditions — empty, task ID, exact path, regex", () => {
  const task = { topologyId: "t", path: "main/g/task_1", id: "4242" };
  const other = { id: "1", path: "main/g/task_0" };
  const paths = new Set(["main/g/task_1", "main/g/task_10", "main/g/task_0"]);
  assertEquals(matchesCondition("", task, other), true);
  assertEquals(matchesCondition("", task, { id: "4242", path: "main/g/task_1" }), false, "not the sender");
  assertEquals(matchesCondition("", task, { id: "tool:x", path: "" }), true);
  assertEquals(matchesCondition("4242", task, other), true);
  assertEquals(matchesCondition("4243", task, other), false);
  assertEquals(matchesCondition("main/g/task_1", task, other, paths), true);
  assertEquals(
    matchesCondition("main/g/task_1", { ...task, path: "main/g/task_10" }, other, paths),
    false,
    "an exact path is not a prefix regex",
  );
  assertEquals(matchesCondition("task_\\d$", task, other, paths), true);
  assertEquals(matchesCondition("[", task, other, paths), false);
});

Deno.test("cmd: conditions are classified by explicit rules", () => {
  assertEquals(parseCondition("agent"), { kind: "agents" });
  assertEquals(parseCondition("agent:12D3KooWabc"), { kind: "agents", selector: "12D3KooWabc" });
  assertEquals(parseCondition("agent:node-1.example.org"), {
    kind: "agents",
    selector: "node-1.example.org",
  });
  assertEquals(parseCondition("tool"), { kind: "tools" });
  assertEquals(parseCondition("tool:12D3KooWabc"), { kind: "tools", peerId: "12D3KooWabc" });
  for (
    const c of ["", "4242", "main/agent_0", "agent.*", ".*agent", "agents", "(agent)", "tools", "^agent"]
  ) {
    assertEquals(parseCondition(c), { kind: "tasks" }, `"${c}" addresses tasks`);
  }
  assertStringIncludes(assertThrows(() => parseCondition("agent:"), RangeError).message, "names no agent");
  assertStringIncludes(assertThrows(() => parseCondition("tool:"), RangeError).message, "names no tool");
  assertEquals(addressesAgents("agent"), true);
  assertEquals(addressesAgents("agent:x"), true);
  assertEquals(addressesAgents("agent:"), false, "malformed: addresses nobody");
  assertEquals(addressesAgents("tool"), false);
  assertEquals(addressesAgents(""), false, "the empty condition is tasks (and tools), not agents");
});

Deno.test("cmd: conditions for agents and tools never reach tasks, even where a regex would match", () => {
  const sender = { id: "tool:x", path: "" };
  const named = (path: string): RoutableTask => ({ topologyId: "t", path, id: "1" });
  for (const c of ["agent", "agent:main/agent_0", "agent:", "tool", "tool:x", "tool:"]) {
    for (const path of ["main/agent_0", "main/tool_0", "agent", "tool", "agent:main/agent_0"]) {
      assertEquals(matchesCondition(c, named(path), sender), false, `"${c}" must not reach task "${path}"`);
    }
  }
  // Regexes that merely mention "agent" still address tasks.
  assertEquals(matchesCondition("agent_\\d", named("main/agent_0"), sender), true);
  assertEquals(matchesCondition(".*agent", named("main/agent_0"), sender), true);
});

Deno.test("cmd: agent and tool conditions select by peer ID or host", () => {
  const self = { peerId: "12D3KooWself", host: "node1" };
  assertEquals(matchesAgent("agent", self), true);
  assertEquals(matchesAgent("agent:12D3KooWself", self), true);
  assertEquals(matchesAgent("agent:node1", self), true);
  assertEquals(matchesAgent("agent:node2", self), false);
  assertEquals(matchesAgent("agent:12D3KooWother", self), false);
  assertEquals(matchesAgent("agent:", self), false);
  for (const c of ["", "tool", "tool:12D3KooWself", "node1", ".*", "12D3KooWself"]) {
    assertEquals(matchesAgent(c, self), false, `"${c}" does not address agents`);
  }
  assertEquals(matchesTool("", "12D3KooWt"), true);
  assertEquals(matchesTool("tool", "12D3KooWt"), true);
  assertEquals(matchesTool("tool:12D3KooWt", "12D3KooWt"), true);
  assertEquals(matchesTool("tool:12D3KooWu", "12D3KooWt"), false);
  assertEquals(matchesTool("agent", "12D3KooWt"), false);
  assertEquals(matchesTool(".*", "12D3KooWt"), false);
});

Deno.test("cmd: only commands to agents may leave out the topology on the wire", () => {
  const payload = new Uint8Array([1]);
  assert(v.is(CmdRequestSchema, { condition: "agent", payload }));
  assert(v.is(CmdRequestSchema, { topologyId: "", condition: "agent:node1", payload }));
  assert(v.is(CmdRequestSchema, { topologyId: "t", condition: "agent", payload }));
  assert(!v.is(CmdRequestSchema, { condition: "", payload }));
  assert(!v.is(CmdRequestSchema, { topologyId: "", condition: "tool", payload }));
  assert(v.is(CmdRequestSchema, { topologyId: "t", condition: "main/.*", payload }));
});

Deno.test("cmd: an agent-addressed command reaches every agent, no task, and each agent's reply", async () => {
  const swarmKey = createSwarmKey();
  const listen = ["/ip4/127.0.0.1/tcp/0"];
  await using a = await createMeshNode({ swarmKey, listen });
  await using b = await createMeshNode({ swarmKey, listen });
  const tasks: RoutableTask[] = [{ topologyId: "t", path: "main/agent_0", id: "7" }];
  const log = createLogger({ stderr: false });
  const start = async (node: typeof a, host: string) => {
    const commands = new CustomCommands({ node, host, localTasks: () => tasks });
    await commands.start();
    const toTasks: Command[] = [];
    const toAgent: Command[] = [];
    commands.delivered.on(({ command }) => toTasks.push(command));
    commands.toAgent.on((command) => toAgent.push(command));
    const answering = startAgentCommands({
      commands,
      log,
      peerId: node.peerId,
      host,
      status: () => {
        throw new Error("not asked");
      },
    });
    return { commands, toTasks, toAgent, answering };
  };
  const ca = await start(a, "host-a");
  const cb = await start(b, "host-b");
  try {
    await b.dial(a.addresses()[0]!);
    const sender = { id: "7", path: "main/agent_0" };
    const reached = async () =>
      (await ca.commands.send({
        topologyId: "t",
        condition: "agent",
        payload: new TextEncoder().encode("ping"),
        sender,
      }, {
        waitReplies: 2,
        timeoutMs: 1_000,
      })).replies;
    // Gossip needs a moment to form its mesh; retry until both agents answer.
    const replies = await waitFor(async () => {
      const r = await reached();
      return r.length === 2 ? r : undefined;
    }, { timeout: 20_000, what: "both agents to answer" });
    assertEquals(
      replies.map((r) => [r.sender.id, r.sender.host, new TextDecoder().decode(r.payload)]).sort(),
      [
        [`agent:${a.peerId}`, "host-a", `pong from agent ${a.peerId} on host-a`],
        [`agent:${b.peerId}`, "host-b", `pong from agent ${b.peerId} on host-b`],
      ].sort(),
    );
    const seenByA = ca.toAgent.length;
    const one = await ca.commands.send({
      topologyId: "",
      condition: "agent:host-b",
      payload: new TextEncoder().encode("frobnicate now"),
      sender: { id: "tool:x", path: "" },
    }, { waitReplies: 1, timeoutMs: 20_000 });
    // The sending agent routes its own commands synchronously: had it been addressed, it would know.
    assertEquals(ca.toAgent.length, seenByA, "agent:host-b does not reach host-a");
    assertEquals(one.replies.map((r) => [r.sender.host, new TextDecoder().decode(r.payload)]), [[
      "host-b",
      'error: unknown agent command "frobnicate"; built-in: ping, status, getlog; ' +
      "add yours with shoal agent --command-handler FILE",
    ]]);
    assertEquals([...ca.toTasks, ...cb.toTasks], [], "no task hears a command to agents");
    await assertRejects(
      () => ca.commands.send({ topologyId: "", condition: "main/.*", payload: new Uint8Array(), sender }),
      RangeError,
    );
    await assertRejects(
      () => ca.commands.send({ topologyId: "t", condition: "agent:", payload: new Uint8Array(), sender }),
      RangeError,
    );
  } finally {
    for (const c of [ca, cb]) {
      c.answering.close();
      await c.commands.stop();
    }
  }
});

Deno.test("cmd: a command to a placed path goes straight to its agent and the reply straight back; a stale placement falls back to gossip once", async () => {
  const swarmKey = createSwarmKey();
  const listen = ["/ip4/127.0.0.1/tcp/0"];
  await using a = await createMeshNode({ swarmKey, listen });
  await using b = await createMeshNode({ swarmKey, listen });
  await using c = await createMeshNode({ swarmKey, listen });
  // Where each agent's replica says the tasks are: "main/t_1" on b, "main/t_2" on b too, though it runs on c.
  const placement = new Map([["main/t_0", [a.peerId]], ["main/t_1", [b.peerId]], ["main/t_2", [b.peerId]]]);
  const running = new Map([
    [a.peerId, [{ topologyId: "t", path: "main/t_0", id: "100" }]],
    [b.peerId, [{ topologyId: "t", path: "main/t_1", id: "101" }]],
    [c.peerId, [{ topologyId: "t", path: "main/t_2", id: "102" }]],
  ]);
  const ids = new Map([["100", "main/t_0"], ["101", "main/t_1"], ["102", "main/t_2"]]);
  const start = async (node: typeof a) => {
    const commands = new CustomCommands({
      node,
      localTasks: () => running.get(node.peerId)!,
      places: (id) => id === "t" ? { agentsOf: placement, pathOfId: (x) => ids.get(x) } : undefined,
    });
    await commands.start();
    const got: string[] = [];
    commands.delivered.on(({ task, command }) => {
      got.push(`${task.path} ${new TextDecoder().decode(command.payload)}`);
      commands.reply(
        command.id,
        { id: task.id, path: task.path },
        new TextEncoder().encode(`re ${task.path}`),
      );
    });
    const gossiped: number[] = [];
    node.published.on((e) => {
      if (e.topic === CMD_TOPIC) gossiped.push(e.bytes);
    });
    return { commands, got, gossiped };
  };
  const [ca, cb, cc] = [await start(a), await start(b), await start(c)];
  try {
    await b.dial(a.addresses()[0]!);
    await c.dial(a.addresses()[0]!);
    await c.dial(b.addresses()[0]!);
    const sender = { id: "tool:x", path: "" };
    const send = (condition: string, text: string) =>
      ca.commands.send({ topologyId: "t", condition, payload: new TextEncoder().encode(text), sender }, {
        waitReplies: 1,
        timeoutMs: 10_000,
      });
    const r1 = await send("main/t_1", "one");
    const r2 = await send("101", "two");
    const r3 = await send("t_1$", "three");
    for (const r of [r1, r2, r3]) {
      assertEquals(r.replies.map((x) => new TextDecoder().decode(x.payload)), ["re main/t_1"]);
    }
    assertEquals(cb.got, ["main/t_1 one", "main/t_1 two", "main/t_1 three"]);
    assertEquals([ca.gossiped, cb.gossiped, cc.gossiped], [[], [], []], "no gossip, neither way");
    const local = await send("main/t_0", "here");
    assertEquals(local.replies.map((x) => new TextDecoder().decode(x.payload)), ["re main/t_0"]);
    assertEquals(ca.got, ["main/t_0 here"]);
    // b holds no "main/t_2" after all: it gossips the command once; c delivers it, once, and replies to a.
    const moved = await waitFor(async () => {
      const r = await send("main/t_2", "moved");
      return r.replies.length === 1 ? r : undefined;
    }, { timeout: 20_000, what: "the moved task to answer" });
    assertEquals(moved.replies.map((x) => new TextDecoder().decode(x.payload)), ["re main/t_2"]);
    assert(cb.gossiped.length > 0, "b fell back to gossip");
    assertEquals(cc.got.filter((g) => g === "main/t_2 moved").length, 1);
    assertEquals(ca.gossiped, [], "the origin gossiped nothing");
  } finally {
    for (const x of [ca, cb, cc]) await x.commands.stop();
  }
});
