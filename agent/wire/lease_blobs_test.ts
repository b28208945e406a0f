import { assertEquals, assertThrows } from "../../tests/_assert.ts";
import { packBlobs, unpackBlobs } from "./lease_blobs.ts";
import type { TaskSpec } from "./types.ts";

const spec = (path: string, files: TaskSpec["files"]): TaskSpec => ({
  topologyId: "t",
  path,
  id: "1",
  name: "n",
  index: 0,
  groupName: "main",
  exe: "./exe",
  maxRestarts: 0,
  slotId: "",
  sessionId: "",
  ...(files ? { files } : {}),
});

Deno.test("lease blobs: one large content shared by many tasks travels once and comes back for each", () => {
  const big = new Uint8Array(4096).fill(7);
  const other = new Uint8Array(2048).fill(1);
  const small = new Uint8Array([1, 2, 3]);
  const specs = [
    spec("a", [{ name: "exe", content: big, mode: 0o755 }, { name: "x.txt", content: "text" }]),
    spec("b", [{ name: "exe", content: big, mode: 0o755 }, { name: "s", content: small }]),
    spec("c", [{ name: "o", content: other }]),
    spec("d", undefined),
  ];
  const packed = packBlobs(specs);
  assertEquals(packed.blobs?.length, 2);
  assertEquals(packed.tasks[0]!.files![0], { name: "exe", blob: 0, mode: 0o755 });
  assertEquals(packed.tasks[1]!.files![1], { name: "s", content: small });
  const back = unpackBlobs(packed.tasks, packed.blobs);
  assertEquals(back, specs);
  assertEquals(back[0]!.files![0]!.content === back[1]!.files![0]!.content, true);
});

Deno.test("lease blobs: nothing to share leaves the request as it was; a bad reference is refused by name", () => {
  const specs = [spec("a", [{ name: "f", content: "hello" }])];
  assertEquals(packBlobs(specs), { tasks: specs });
  const err = assertThrows(
    () => unpackBlobs([{ path: "main/t_0", files: [{ name: "exe", blob: 3 }] }], []),
    RangeError,
  );
  assertEquals(err.message, `File "exe" of task "main/t_0" refers to blob 3, but the lease carries 0`);
});

Deno.test("lease blobs: contents staged beforehand travel as references and come back as links", () => {
  const big = new Uint8Array(4096).fill(7);
  const specs = [spec("a", [{ name: "exe", content: big, mode: 0o755 }])];
  const ref = { id: "a".repeat(64), size: 4096 };
  const packed = packBlobs(specs, new Map([[big, ref]]));
  assertEquals(packed, { tasks: [{ ...specs[0]!, files: [{ name: "exe", staged: ref, mode: 0o755 }] }] });
  const back = unpackBlobs(packed.tasks, [], (r, mode) => `/cache/${r.id}.${mode.toString(8)}`);
  assertEquals(back[0]!.files, [{ name: "exe", content: "", link: `/cache/${ref.id}.755`, mode: 0o755 }]);
  const err = assertThrows(() => unpackBlobs(packed.tasks, [], () => undefined), RangeError);
  assertEquals(err.message.includes("which this agent does not hold"), true);
});
