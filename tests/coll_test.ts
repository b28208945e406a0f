/**
 * Collectives on a real local mesh: real agents, real task processes speaking the task API (with `curl`
 * where there are hundreds of them, with the `shoal` helper and the TypeScript client where there are a
 * few), real failures (a member SIGKILLed, an agent SIGKILLed).
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { assert, assertEquals, assertStringIncludes } from "./_assert.ts";
import { ps, startMesh, type TestMesh, writeTopology } from "./_harness.ts";
import { runToEnd, script } from "./_task_scripts.ts";
import { waitFor } from "./_wait.ts";

const curlMissing = spawnSync("curl", ["--version"]).status === 0
  ? undefined
  : "curl not found (.ci/setup-curl.sh installs it)";
const ignore = !!curlMissing && !process.env.CI;
if (curlMissing) console.warn(`coll tests: ${ignore ? "skipped" : "cannot run"}: ${curlMissing}`);

const API =
  `api() { curl -sg --unix-socket "$SHOAL_SOCKET" -H "Authorization: Bearer $SHOAL_TASK_TOKEN" "$@"; }`;

function topology(name: string, exe: string, n: number, extra = ""): string {
  return `<topology name="${name}">${extra}
  <decltask name="T"><exe reachable="true">${exe}</exe></decltask>
  <main name="main"><group name="g" n="${n}"><task>T</task></group></main>
</topology>`;
}

/** Every file of `dir`, by name. */
function outputs(dir: string): Map<string, string> {
  return new Map(readdirSync(dir).map((f) => [f, readFileSync(join(dir, f), "utf8")]));
}

function outDir(mesh: TestMesh, name: string): string {
  const dir = join(mesh.home.dir, name);
  mkdirSync(dir, { recursive: true });
  return dir;
}

Deno.test({
  name: "coll: a 200-task barrier over 4 agents releases nobody early and everybody once, twice in a row",
  ignore,
  async fn() {
    await using mesh = await startMesh({ agents: 4, slots: 50 });
    const dir = outDir(mesh, "barrier");
    const task = script(
      mesh,
      "barrier.sh",
      `${API}
out=${dir}/$DDS_TASK_INDEX
# One member arrives late: nobody may leave before it.
[ "$DDS_TASK_INDEX" = 137 ] && sleep 1
for g in 1 2; do
  echo "enter $g $(date +%s%N)" >> $out
  r=$(api -X POST "http://t/v1/coll/barrier/start?timeout=90000")
  echo "release $g $(date +%s%N) $r" >> $out
done`,
    );
    const tasks = await runToEnd(
      mesh,
      writeTopology(mesh.home.dir, "b.xml", topology("Barrier", task, 200)),
      {
        timeout: 120_000,
      },
    );
    assertEquals(new Set(tasks.map((t) => t.agent)).size, 4, "tasks ran on all 4 agents");
    assertEquals(tasks.filter((t) => t.exitCode !== 0).map((t) => t.path), []);
    const files = outputs(dir);
    assertEquals(files.size, 200);
    for (const g of [1, 2]) {
      const enters: number[] = [];
      const releases: number[] = [];
      for (const [index, text] of files) {
        const lines = text.trim().split("\n");
        const e = lines.filter((l) => l.startsWith(`enter ${g} `));
        const r = lines.filter((l) => l.startsWith(`release ${g} `));
        assertEquals([e.length, r.length], [1, 1], `task ${index} entered and left generation ${g} once`);
        enters.push(Number(e[0]!.split(" ")[2]));
        releases.push(Number(r[0]!.split(" ")[2]));
        const body = JSON.parse(r[0]!.split(" ").slice(3).join(" "));
        assertEquals([body.generation, body.size, body.op], [g, 200, "barrier"], `task ${index}: ${r[0]}`);
      }
      const lastIn = Math.max(...enters);
      const firstOut = Math.min(...releases);
      assert(
        firstOut >= lastIn,
        `generation ${g}: first release ${firstOut} before the last arrival ${lastIn}`,
      );
    }
  },
});

Deno.test({
  name:
    "coll: shell allreduce sums are exact, min and max agree, broadcast and scatter reach every member, binary values come back as base64 in --json",
  ignore,
  async fn() {
    await using mesh = await startMesh({ agents: 3, slots: 2 });
    const dir = outDir(mesh, "reduce");
    // 2^60 + index: a float sum would lose the low digits.
    const task = script(
      mesh,
      "reduce.sh",
      `out=${dir}/$DDS_TASK_INDEX
v=$((1152921504606846976 + DDS_TASK_INDEX))
{
  echo "sum $($SHOAL coll allreduce total --op sum "$v")"
  echo "min $($SHOAL coll allreduce lo --op min "$DDS_TASK_INDEX")"
  echo "max $($SHOAL coll allreduce hi --op max "[$DDS_TASK_INDEX, -$DDS_TASK_INDEX]")"
  echo "bcast $($SHOAL coll broadcast cfg "from-$DDS_TASK_INDEX" --root main/g/T_4)"
  if [ "$DDS_TASK_INDEX" = 0 ]; then part=$($SHOAL coll scatter work p0 p1 p2 p3 p4 p5)
  else part=$($SHOAL coll scatter work); fi
  echo "part $part"
  echo "cat $($SHOAL coll allreduce word --op concat "$DDS_TASK_INDEX")"
  echo "bin $(printf '\\377%s' "$DDS_TASK_INDEX" | $SHOAL coll allgather bin - --json)"
  if [ "$DDS_TASK_INDEX" = 0 ]; then
    big=$(head -c 307200 /dev/zero | tr '\\0' '\\377' | $SHOAL coll broadcast big - --json | wc -c)
  else big=$($SHOAL coll broadcast big --json | wc -c); fi
  echo "big $big"
} > $out 2>&1`,
    );
    const tasks = await runToEnd(mesh, writeTopology(mesh.home.dir, "r.xml", topology("Reduce", task, 6)));
    assertEquals(new Set(tasks.map((t) => t.agent)).size, 3);
    const expected = (6n * 1152921504606846976n + 15n).toString();
    // Bytes that are not UTF-8 come back as base64 in --json: each gathered value, and a 300 KiB broadcast.
    const b64 = (bytes: number[]) => btoa(String.fromCharCode(...bytes));
    const bin = JSON.stringify({
      name: "bin",
      generation: 1,
      op: "allgather",
      size: 6,
      values: [0, 1, 2, 3, 4, 5].map((k) => ({ path: `main/g/T_${k}`, data: b64([255, 48 + k]) })),
    });
    const big = JSON.stringify({
      name: "big",
      generation: 1,
      op: "broadcast",
      size: 6,
      data: btoa("\xff".repeat(307200)),
    }).length + 1;
    for (const [index, text] of outputs(dir)) {
      assertEquals(text.trim().split("\n"), [
        `sum ${expected}`,
        "min 0",
        "max [5,0]",
        "bcast from-4",
        `part p${index}`,
        "cat 012345",
        `bin ${bin}`,
        `big ${big}`,
      ], `task ${index}`);
    }
  },
});

Deno.test({
  name: "coll: two collectives at once over overlapping groups keep their members and results apart",
  ignore,
  async fn() {
    await using mesh = await startMesh({ agents: 4, slots: 2 });
    const dir = outDir(mesh, "overlap");
    // A = T_0..T_5, B = T_2..T_7; T_2..T_5 are in both and call both at the same time.
    const task = script(
      mesh,
      "overlap.sh",
      `${API}
i=$DDS_TASK_INDEX; v=$((i + 1))
call() { api -X POST --data "$v" "http://t/v1/coll/allreduce/$1?reduce=sum&group=$2&timeout=60000" > ${dir}/$i.$1; }
[ $i -le 5 ] && call a 'regex:main/g/T_[0-5]' &
[ $i -ge 2 ] && call b 'regex:main/g/T_[2-7]' &
wait`,
    );
    await runToEnd(mesh, writeTopology(mesh.home.dir, "o.xml", topology("Overlap", task, 8)));
    const files = outputs(dir);
    assertEquals(
      [...files.keys()].sort(),
      [
        ...[0, 1, 2, 3, 4, 5].map((i) => `${i}.a`),
        ...[2, 3, 4, 5, 6, 7].map((i) => `${i}.b`),
      ].sort(),
    );
    for (const [f, text] of files) {
      let r;
      try {
        r = JSON.parse(text);
      } catch {
        throw new Error(`${f}: ${text}`);
      }
      const a = f.endsWith(".a");
      assertEquals([r.text, r.size, r.generation], [a ? "21" : "33", 6, 1], `${f}: ${text}`);
    }
  },
});

Deno.test({
  name: "coll: a member killed mid-barrier fails the others with its path; the next generation starts clean",
  ignore,
  async fn() {
    await using mesh = await startMesh({ agents: 3, slots: 2 });
    const dir = outDir(mesh, "kill");
    // T_5 sleeps on its first run (never reaching the barrier) and is restarted by its trigger once killed.
    const task = script(
      mesh,
      "kill.sh",
      `${API}
out=${dir}/$DDS_TASK_INDEX.$(date +%s%N)
if [ "$DDS_TASK_INDEX" = 5 ] && [ ! -e ${dir}/.restarted ]; then touch ${dir}/.restarted; exec sleep 600; fi
echo "1 $(api -X POST http://t/v1/coll/barrier/kb)" >> $out
echo "2 $(api -X POST http://t/v1/coll/barrier/kb)" >> $out`,
    );
    const file = writeTopology(
      mesh.home.dir,
      "k.xml",
      topology(
        "Kill",
        task,
        6,
        `\n  <decltrigger name="again" condition="TaskCrashed" action="RestartTask" arg="1"/>`,
      )
        .replace(`</exe>`, `</exe><triggers><name>again</name></triggers>`),
    );
    const act = await mesh.run(["topology", "activate", file]);
    assertEquals(act.code, 0, act.stderr);
    // The five others wait at the barrier (their agents hold their contributions) while T_5 sleeps.
    const victim = await waitFor(async () => {
      const t = (await ps(mesh)).find((t) => t.path === "main/g/T_5");
      return t?.state === "running" && t.pid ? t : undefined;
    }, { what: "T_5 running" });
    process.kill(victim.pid!, "SIGKILL");
    const tasks = await runToEnd(mesh, null, { tasks: 6, timeout: 30_000 });
    assertEquals(tasks.filter((t) => t.exitCode !== 0).map((t) => t.path), []);
    const files = [...outputs(dir)].filter(([f]) => !f.startsWith("."));
    assertEquals(files.length, 6, "five survivors and the restarted T_5 wrote once each");
    for (const [f, text] of files) {
      const [first, second] = text.trim().split("\n");
      const err = JSON.parse(first!.slice(2)).error;
      assertEquals(err?.name, "CollectiveFailedError", `${f}: ${first}`);
      assertStringIncludes(err.message, "main/g/T_5");
      assertEquals(err.missing, ["main/g/T_5"]);
      assertEquals(err.generation, 1);
      const ok = JSON.parse(second!.slice(2));
      assertEquals([ok.generation, ok.size], [2, 6], `${f}: ${second}`);
    }
  },
});

Deno.test({
  name: "coll: a member's agent that dies ends the generation for the others, naming its members",
  ignore,
  async fn() {
    await using mesh = await startMesh({ agents: 3, slots: 2 });
    const dir = outDir(mesh, "agentdeath");
    const task = script(
      mesh,
      "death.sh",
      `${API}
if [ "$DDS_TASK_INDEX" = 5 ]; then exec sleep 600; fi
api -X POST http://t/v1/coll/barrier/ad > ${dir}/$DDS_TASK_INDEX
sleep 600`,
    );
    const act = await mesh.run([
      "topology",
      "activate",
      writeTopology(mesh.home.dir, "d.xml", topology("Death", task, 6)),
    ]);
    assertEquals(act.code, 0, act.stderr);
    const before = await waitFor(async () => {
      const t = await ps(mesh);
      return t.length === 6 && t.every((x) => x.state === "running") ? t : undefined;
    }, { what: "6 tasks running" });
    const victimAgent = before.find((t) => t.path === "main/g/T_5")!.agent;
    const victims = new Set(before.filter((t) => t.agent === victimAgent).map((t) => t.path));
    const agent = mesh.agents.find((a) =>
      a.id === victimAgent || a.id.endsWith(victimAgent.replace("…", ""))
    )!;
    process.kill(agent.pid, "SIGKILL");
    const survivors = before.filter((t) => !victims.has(t.path)).map((t) => t.path.split("_").pop()!);
    const files = await waitFor(() => {
      const f = outputs(dir);
      return survivors.every((i) => f.get(i)?.includes("}")) ? f : undefined;
    }, { timeout: 30_000, what: "every survivor's answer" });
    for (const i of survivors) {
      const err = JSON.parse(files.get(i)!).error;
      assertEquals(err?.name, "CollectiveFailedError", `T_${i}: ${files.get(i)}`);
      assertStringIncludes(err.message, "main/g/T_5");
      assert(err.missing.includes("main/g/T_5"), `T_${i} names T_5 among ${err.missing}`);
    }
  },
});

Deno.test({
  name:
    "coll: the TypeScript client — allgather, a user-function allreduce, scatter of bytes, a value in several buffers, typed errors",
  ignore,
  async fn() {
    await using mesh = await startMesh({ agents: 2, slots: 2 });
    const dir = outDir(mesh, "ts");
    const client = fileURLToPath(new URL("../client/mod.ts", import.meta.url));
    const deno = fileURLToPath(new URL("../node_modules/deno/deno", import.meta.url));
    const program = join(mesh.home.dir, "member.ts");
    Deno.writeTextFileSync(
      program,
      `import { writeFileSync } from "node:fs";
import { CollectiveFailedError, connectTask } from ${JSON.stringify(client)};
const task = connectTask();
const i = Number(process.env.DDS_TASK_INDEX);
const all = await task.coll.allgather("names", \`m\${i}\`, { timeoutMs: 30_000 });
const longest = await task.coll.allreduce("longest", "x".repeat(i + 1), {
  op: (a, b) => (b.length > a.length ? b : a),
});
const part = await task.coll.scatter("bytes", i === 0 ? [0, 1, 2, 3].map((k) => new Uint8Array([k, 255])) : undefined);
// A value in two buffers (non-contiguous) is one value.
const te = new TextEncoder();
const pieces = await task.coll.allreduce("pieces", [te.encode("<"), te.encode(\`\${i}>\`)], { op: "concat" });
let failed = "";
// Only T_0 calls "short", so its barrier over T_0 and T_1 times out (T_1 lives on meanwhile: a member that
// ended would fail it at once instead).
if (i === 0) {
  try {
    await task.coll.barrier("short", { group: "tasks:main/g/T_0,main/g/T_1", timeoutMs: 300 });
  } catch (err) {
    failed = err instanceof CollectiveFailedError ? \`\${err.reason} / \${err.missing.join(",")}\` : String(err);
  }
}
writeFileSync(${JSON.stringify(dir)} + "/" + i, JSON.stringify({
  all: all.values?.map((v) => v.text), longest: longest.text, part: [...(part.data ?? [])], failed,
  pieces: pieces.text,
}));
if (i === 1) await new Promise((resolve) => setTimeout(resolve, 3_000));`,
    );
    const exe = script(
      mesh,
      "ts.sh",
      `DENO_DIR=${join(mesh.home.dir, "deno-cache")} exec ${deno} run -A --no-check ${program}`,
    );
    const tasks = await runToEnd(mesh, writeTopology(mesh.home.dir, "ts.xml", topology("Ts", exe, 4)), {
      timeout: 90_000,
    });
    assertEquals(tasks.filter((t) => t.exitCode !== 0).map((t) => t.path), []);
    const files = outputs(dir);
    for (const i of [0, 1, 2, 3]) {
      const r = JSON.parse(files.get(String(i))!);
      assertEquals(r.all, ["m0", "m1", "m2", "m3"]);
      assertEquals(r.longest, "xxxx");
      assertEquals(r.part, [i, 255]);
      assertEquals(r.pieces, "<0><1><2><3>");
      if (i === 0) {
        assertStringIncludes(r.failed, "timed out after 0.3 s");
        assertStringIncludes(r.failed, "/ main/g/T_1");
      } else assertEquals(r.failed, "");
    }
  },
});

Deno.test({
  name: "coll: a tool outside the topology takes a tool place (allreduce, barrier) and watches an outcome",
  ignore,
  async fn() {
    await using mesh = await startMesh({ agents: 2, slots: 2 });
    const dir = outDir(mesh, "tool");
    const task = script(
      mesh,
      "tool.sh",
      `out=${dir}/$DDS_TASK_INDEX
$SHOAL coll allreduce s --op sum $((DDS_TASK_INDEX + 1)) --group all+tools:1 > $out.tmp 2>&1 && mv $out.tmp $out
$SHOAL coll barrier go --group all+tools:1 && echo released >> $out`,
    );
    const act = await mesh.run([
      "topology",
      "activate",
      writeTopology(mesh.home.dir, "t.xml", topology("Tool", task, 4)),
    ]);
    assertEquals(act.code, 0, act.stderr);
    const sum = await mesh.run([
      "coll",
      "allreduce",
      "s",
      "--op",
      "sum",
      "100",
      "--group",
      "all+tools:1",
      "--json",
    ]);
    assertEquals(sum.code, 0, sum.stderr);
    assertEquals(JSON.parse(sum.stdout).text, "110");
    const files = await waitFor(() => {
      const f = outputs(dir);
      return [0, 1, 2, 3].every((i) => f.get(String(i))?.startsWith("110")) ? f : undefined;
    }, { what: "every task's sum" });
    // The tasks now wait at "go", which needs the tool.
    assert([...files.values()].every((t) => !t.includes("released")), "nobody passed go before the tool");
    const go = await mesh.run(["coll", "barrier", "go", "--group", "all+tools:1"]);
    assertEquals(go.code, 0, go.stderr);
    const tasks = await runToEnd(mesh, null, { tasks: 4 });
    assertEquals(tasks.filter((t) => t.exitCode !== 0).map((t) => t.path), []);
    for (const t of outputs(dir).values()) assertStringIncludes(t, "released");
    const watched = await mesh.run([
      "coll",
      "watch",
      "s",
      "--group",
      "all+tools:1",
      "--generation",
      "1",
      "--json",
    ]);
    assertEquals(watched.code, 0, watched.stderr);
    assertEquals([JSON.parse(watched.stdout).text, JSON.parse(watched.stdout).size], ["110", 5]);
    const noPlace = await mesh.run(["coll", "barrier", "go"]);
    assertEquals(noPlace.code, 2, `a group without tool places refuses a tool: ${noPlace.stderr}`);
    assertStringIncludes(noPlace.stderr, "+tools:N");
  },
});
