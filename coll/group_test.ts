import { assertEquals, assertStringIncludes, assertThrows } from "../tests/_assert.ts";
import { type GroupTask, normaliseGroup, selectMembers } from "./group.ts";

const tasks: GroupTask[] = [
  { path: "main/master_0", id: "100", groupName: "main", collectionPath: null },
  { path: "main/g/c_0/w_0", id: "200", groupName: "g", collectionPath: "main/g/c_0" },
  { path: "main/g/c_0/w_1", id: "201", groupName: "g", collectionPath: "main/g/c_0" },
  { path: "main/g/c_1/w_0", id: "210", groupName: "g", collectionPath: "main/g/c_1" },
  { path: "main/g/c_1/w_10", id: "211", groupName: "g", collectionPath: "main/g/c_1" },
];
const sel = (g: string, from = "") => selectMembers(normaliseGroup(g, { collectionPath: from }), tasks);

Deno.test("coll group: every form selects its tasks in expansion order", () => {
  assertEquals(sel("").length, 5);
  assertEquals(sel("all").length, 5);
  assertEquals(sel("collection", "main/g/c_1"), ["main/g/c_1/w_0", "main/g/c_1/w_10"]);
  assertEquals(sel("collection:main/g/c_0"), ["main/g/c_0/w_0", "main/g/c_0/w_1"]);
  assertEquals(sel("group:main"), ["main/master_0"]);
  assertEquals(sel("regex:main/g/c_./w_0"), ["main/g/c_0/w_0", "main/g/c_1/w_0"]);
  assertEquals(sel("regex:w_1"), [], "a regex matches the whole path");
  assertEquals(sel("tasks:211, main/master_0"), ["main/master_0", "main/g/c_1/w_10"]);
});

Deno.test("coll group: malformed groups are clear errors", () => {
  assertStringIncludes(
    assertThrows(() => normaliseGroup("collection", { collectionPath: "" }), RangeError).message,
    "in no collection",
  );
  assertStringIncludes(
    assertThrows(() => normaliseGroup("regex:(", { collectionPath: "" }), RangeError).message,
    'Group "regex:("',
  );
  assertStringIncludes(
    assertThrows(() => normaliseGroup("team:x", { collectionPath: "" }), RangeError).message,
    "is not one of",
  );
  assertStringIncludes(
    assertThrows(() => normaliseGroup("tasks:,", { collectionPath: "" }), RangeError).message,
    "lists no task",
  );
});
