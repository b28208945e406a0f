import { assertEquals } from "../tests/_assert.ts";
import { Board, shownState } from "./monitor_board.ts";

const where = { at: 1, by: "peer-a", agent: "peer-a", host: "h", topologyId: "t", id: "7" };

Deno.test("monitor board: task events move a task through running, crashed and lost", () => {
  const board = new Board();
  board.apply({ type: "agent:joined", id: "peer-a", host: "h", at: 0 }, "joined");
  assertEquals(board.tasks.size, 0, "a membership event touches no task");
  board.apply({ ...where, type: "task:started", path: "main/a_0", pid: 9, restarts: 2 }, "started");
  const a = () => board.tasks.get("t")!.get("main/a_0")!;
  assertEquals([shownState(a()), a().restarts], ["running", 2]);
  board.apply({
    ...where,
    type: "task:exited",
    path: "main/a_0",
    pid: 9,
    code: 3,
    signal: null,
    willRestart: false,
    stopped: false,
  }, "exited");
  assertEquals([shownState(a()), a().exitCode], ["crashed", 3]);
  board.apply({
    type: "tasks:lost",
    at: 2,
    by: "peer-b",
    agent: "peer-a",
    topologyId: "t",
    paths: ["main/a_0"],
  }, "lost");
  assertEquals(a().state, "lost");
  assertEquals(board.recent, ["lost", "exited", "started", "joined"]);
});
