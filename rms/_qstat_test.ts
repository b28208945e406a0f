import { assertEquals } from "../tests/_assert.ts";
import { parseQstat } from "./_qstat.ts";

Deno.test("sge: qstat -g d lines give each job's state and its array tasks, ranges expanded", () => {
  const text = [
    "job-ID  prior   name       user         state submit/start at     queue                          slots ja-task-ID ",
    "-----------------------------------------------------------------------------------------------------------------",
    "     12 0.55500 shoal-defa root         r     12/02/2026 03:10:09 shoal.q@vm                         1 1",
    "     12 0.55500 shoal-defa root         t     12/02/2026 03:10:09 shoal.q@vm                         1 2",
    "     12 0.55500 shoal-defa root         qw    12/02/2026 03:10:08                                    1 3-7:2",
    "     13 0.55500 shoal-defa root         hqw   12/02/2026 03:10:08                                    2        ",
    "     14 0.55500 shoal-defa root         Eqw   12/02/2026 03:10:08                                    1 1,4",
    "",
  ].join("\n");
  const q = parseQstat(text);
  assertEquals(q.get("12"), [
    { state: "r", tasks: [1] },
    { state: "t", tasks: [2] },
    { state: "qw", tasks: [3, 5, 7] },
  ]);
  assertEquals(q.get("13"), [{ state: "hqw" }]);
  assertEquals(q.get("14"), [{ state: "Eqw", tasks: [1, 4] }]);
  assertEquals(parseQstat("").size, 0);
});
