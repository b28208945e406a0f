import { assertEquals } from "../tests/_assert.ts";
import { stagedAsset, stagedNames } from "./declared.ts";

Deno.test("stage: the staged names a command line refers to are found, in both spellings", () => {
  assertEquals(stagedNames('sha256sum $SHOAL_STAGE/calib.root "${SHOAL_STAGE}/run42/x" $SHOAL_STAGE'), [
    "calib.root",
    "run42",
  ]);
});

Deno.test("stage: an asset refers to a staged name only when its whole value is $SHOAL_STAGE/<name>", () => {
  assertEquals(stagedAsset("$SHOAL_STAGE/calib"), "calib");
  assertEquals(stagedAsset(" ${SHOAL_STAGE}/run42/ "), "run42");
  assertEquals(stagedAsset("$SHOAL_STAGE/run42/x"), undefined);
  assertEquals(stagedAsset("see $SHOAL_STAGE/calib"), undefined);
  assertEquals(stagedAsset("$SHOAL_STAGE/.hidden"), undefined);
});
