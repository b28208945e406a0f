import { assertEquals } from "../tests/_assert.ts";
import { stagedNames } from "./task_service.ts";

Deno.test("task service: the staged names a command line refers to are found, in both spellings", () => {
  assertEquals(stagedNames('sha256sum $SHOAL_STAGE/calib.root "${SHOAL_STAGE}/run42/x" $SHOAL_STAGE'), [
    "calib.root",
    "run42",
  ]);
});
