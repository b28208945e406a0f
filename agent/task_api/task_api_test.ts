import { statSync } from "node:fs";
import { dirname } from "node:path";
import {
  AccessDeniedError,
  connectTask,
  TaskApiError,
  UnauthorizedError,
  ValueTooLargeError,
  WaitTimeoutError,
} from "../../client/mod.ts";
import { assert, assertEquals, assertRejects } from "../../tests/_assert.ts";
import { createMeshNode, createSwarmKey } from "../../mesh/mod.ts";
import { CustomCommands, type RoutableTask } from "../commands/mod.ts";
import { KvReplication } from "../kv/mod.ts";
import { KvStore } from "../kv/mod.ts";
import { startTaskApi } from "./task_api.ts";
import type { TaskSpec } from "../wire/mod.ts";

function spec(
  path: string,
  id: string,
  properties: TaskSpec["properties"],
  collectionPath?: string,
): TaskSpec {
  return {
    topologyId: "t",
    path,
    id,
    name: "T",
    index: 0,
    groupName: "main",
    exe: "true",
    maxRestarts: 0,
    slotId: "s",
    sessionId: "x",
    ...(properties ? { properties } : {}),
    ...(collectionPath ? { collectionPath } : {}),
  };
}

/** A task API on one real node, with its key-value store and custom commands. */
async function fixture(localTasks: () => Iterable<RoutableTask> = () => []) {
  const stack = new AsyncDisposableStack();
  const node = stack.use(await createMeshNode({ swarmKey: createSwarmKey() }));
  const store = new KvStore();
  const replication = stack.use(new KvReplication({ node, store }));
  await replication.start();
  const commands = stack.use(new CustomCommands({ node, localTasks }));
  await commands.start();
  const server = stack.use(await startTaskApi({ store, replication, commands }));
  return { store, commands, server, [Symbol.asyncDispose]: () => stack.disposeAsync() };
}

Deno.test("task api: DDS access rules, multi-writer values, waits, tokens, socket mode", async () => {
  await using node = await createMeshNode({ swarmKey: createSwarmKey() });
  const store = new KvStore();
  await using replication = new KvReplication({ node, store });
  await replication.start();
  const api = { tasks: () => [] as never[] };
  await using commands = new CustomCommands({ node, localTasks: () => api.tasks() });
  await commands.start();
  await using server = await startTaskApi({ store, replication, commands });
  assertEquals(statSync(server.socketPath).mode & 0o777, 0o600);
  assertEquals(statSync(dirname(server.socketPath)).mode & 0o777, 0o700);
  const w = (n: number) => ({ name: "P", access: "write" as const, scope: "global" as const, n });
  const env1 = server.register(spec("main/w_1", "11", [w(1)]));
  const env2 = server.register(spec("main/w_2", "12", [w(2)]));
  const envR = server.register(spec("main/r_0", "20", [{ name: "P", access: "read", scope: "global" }]));
  const client = (env: Record<string, string>) =>
    connectTask({ socket: env.SHOAL_SOCKET!, token: env.SHOAL_TASK_TOKEN! });
  const [w1, w2, r] = [client(env1), client(env2), client(envR)];

  const waiting = r.kv.get("P", { waitCount: 2, timeoutMs: 5_000 });
  await w1.kv.put("P", "one");
  await w2.kv.put("P", "two");
  await w1.kv.put("P", "one again");
  assertEquals((await waiting).values.length, 2);
  const got = await r.kv.get("P");
  assertEquals(got.values.map((v) => [v.value, v.sender, v.path]), [
    ["one again", "11", "main/w_1"],
    ["two", "12", "main/w_2"],
  ]);
  await assertRejects(() => r.kv.put("P", "x"), AccessDeniedError);
  await assertRejects(() => w1.kv.get("P"), AccessDeniedError);
  await assertRejects(() => w1.kv.put("Q", "x"), AccessDeniedError);
  await assertRejects(() => w1.kv.put("P", "x".repeat(64 * 1024 + 1)), ValueTooLargeError);
  await w1.kv.put("P", "x".repeat(64 * 1024));
  await assertRejects(
    () => client({ ...env1, SHOAL_TASK_TOKEN: "forged" }).kv.put("P", "x"),
    UnauthorizedError,
  );
  await assertRejects(() => r.kv.get("P", { waitCount: 3, timeoutMs: 100 }), WaitTimeoutError);
  await w2.kv.delete("P");
  assertEquals((await r.kv.get("P")).values.map((v) => v.path), ["main/w_1"]);
  server.unregister("t", "main/w_2");
  await assertRejects(() => w2.kv.put("P", "x"), UnauthorizedError);
  assert(store.size === 2);
});

Deno.test("task api: collection scope limits reads to the same collection instance", async () => {
  await using f = await fixture();
  const { server } = f;
  const p = [{ name: "C", access: "readwrite" as const, scope: "collection" as const }];
  const mk = (path: string, id: string, coll: string) => {
    const env = server.register(spec(path, id, p, coll));
    return connectTask({ socket: env.SHOAL_SOCKET!, token: env.SHOAL_TASK_TOKEN! });
  };
  const a = mk("main/c_0/t_0", "1", "main/c_0");
  const b = mk("main/c_0/t_1", "2", "main/c_0");
  const c = mk("main/c_1/t_0", "3", "main/c_1");
  await a.kv.put("C", "a");
  await c.kv.put("C", "c");
  assertEquals((await b.kv.get("C")).values.map((v) => v.value), ["a"]);
  assertEquals((await c.kv.get("C")).values.map((v) => v.value), ["c"]);
});

Deno.test("task api: replies made together go in one request, and one that fails fails alone", async () => {
  const echo = { topologyId: "t", path: "main/e_0", id: "30" };
  await using f = await fixture(() => [echo]);
  const { commands, server } = f;
  const env = server.register(spec(echo.path, echo.id, undefined));
  const task = connectTask({ socket: env.SHOAL_SOCKET!, token: env.SHOAL_TASK_TOKEN! });
  const stop = new AbortController();
  const heard: string[] = [];
  const listening = (async () => {
    for await (const c of task.cmd.listen({ signal: stop.signal, max: 3 })) {
      if (c.type === "cmd") heard.push(c.id);
    }
  })();
  const sender = { id: "tool:x", path: "" };
  const sent = [1, 2, 3].map((i) =>
    commands.send({ topologyId: "t", condition: echo.path, payload: new Uint8Array([i]), sender }, {
      waitReplies: 1,
      timeoutMs: 10_000,
    })
  );
  await listening;
  assertEquals(heard.length, 3);
  // Three replies and one to a command never delivered, issued in one turn.
  const replies = await Promise.allSettled([
    ...heard.map((id, i) => task.cmd.reply(id, `r${i}`)),
    task.cmd.reply("no-such-command", "x"),
  ]);
  assertEquals(replies.map((r) => r.status), ["fulfilled", "fulfilled", "fulfilled", "rejected"]);
  const err = (replies[3] as PromiseRejectedResult).reason as Error;
  assert(err instanceof TaskApiError && /no-such-command/.test(err.message), String(err));
  const got = await Promise.all(sent);
  assertEquals(got.map((g) => new TextDecoder().decode(g.replies[0]!.payload)).sort(), ["r0", "r1", "r2"]);
  stop.abort();
});

Deno.test("task api: the loopback port serves the same API, and only with a task's token", async () => {
  await using f = await fixture();
  const { server } = f;
  const env = server.register(spec("main/t_0", "40", undefined));
  assertEquals(env.SHOAL_API_PORT, String(server.port));
  const url = `http://127.0.0.1:${env.SHOAL_API_PORT}/v1/self`;
  const ok = await fetch(url, { headers: { authorization: `Bearer ${env.SHOAL_TASK_TOKEN}` } });
  assertEquals([ok.status, (await ok.json()).path], [200, "main/t_0"]);
  const anon = await fetch(url);
  await anon.body?.cancel();
  assertEquals(anon.status, 401);
  const forged = await fetch(url, { headers: { authorization: "Bearer forged" } });
  await forged.body?.cancel();
  assertEquals(forged.status, 401);
});
