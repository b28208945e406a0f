import { assertEquals, assertStringIncludes } from "../tests/_assert.ts";
import { roomNeeded, roomWarning } from "./room.ts";
import type { EnvTask } from "./types.ts";

const task = (mode: EnvTask["mode"]): EnvTask => ({ state: "STANDBY", mode, critical: true });

Deno.test("room: basic tasks and the largest group of hooks at one moment count beyond DEPLOY", () => {
  const tasks = { a: task("direct"), b: task("none"), c: task("basic") };
  const hooks = [
    { trigger: "before_CONFIGURE" },
    { trigger: "before_CONFIGURE" },
    { trigger: "before_CONFIGURE+1" },
    { trigger: "after_START_ACTIVITY" },
  ];
  assertEquals(roomNeeded(tasks, hooks), { deploy: 2, later: 3 });
  assertEquals(roomNeeded(tasks, []), { deploy: 2, later: 1 });
  assertEquals(roomNeeded({ a: task("direct") }, []), { deploy: 1, later: 0 });
});

Deno.test("room: a warning only when DEPLOY fits and what comes later does not", () => {
  assertEquals(roomWarning({ deploy: 2, later: 3 }, 5), undefined);
  assertEquals(roomWarning({ deploy: 2, later: 0 }, 2), undefined);
  const w = roomWarning({ deploy: 1, later: 1 }, 1)!;
  assertStringIncludes(
    w,
    "Hooks and basic tasks take up to 1 slot(s) while they run, beyond the 1 of DEPLOY",
  );
  assertStringIncludes(w, "and 0 will be free");
});
