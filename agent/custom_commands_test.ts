import { assertEquals } from "../tests/_assert.ts";
import { matchesCondition } from "./custom_commands.ts";

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
