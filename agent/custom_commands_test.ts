import { assert, assertEquals, assertRejects, assertStringIncludes, assertThrows } from "../tests/_assert.ts";
import { waitFor } from "../tests/_wait.ts";
import { createMeshNode, createSwarmKey } from "../mesh/mod.ts";
import { startAgentCommands } from "./agent_commands.ts";
import {
  addressesAgents,
  matchesAgent,
  matchesCondition,
  matchesTool,
  parseCondition,
  type RoutableTask,
} from "./conditions.ts";
import { CmdRequestSchema, type Command, CustomCommands } from "./custom_commands.ts";
import { createLogger } from "./log.ts";
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
