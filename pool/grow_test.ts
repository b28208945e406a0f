import { assertEquals } from "../tests/_assert.ts";
import { pilotsToSubmit } from "./grow.ts";

const base = { slotsPerAgent: 4, grown: 0, pending: 0, max: 10, step: 3 };

Deno.test("pool grow: no pilots while the demand fits the free slots", () => {
  assertEquals(pilotsToSubmit({ ...base, demand: 8, free: 8 }).submit, 0);
  assertEquals(pilotsToSubmit({ ...base, demand: 0, free: 0 }).submit, 0);
});

Deno.test("pool grow: enough pilots for the deficit, at most --step at a time", () => {
  assertEquals(pilotsToSubmit({ ...base, demand: 10, free: 2 }).submit, 2);
  assertEquals(pilotsToSubmit({ ...base, demand: 100, free: 0 }).submit, 3);
});

Deno.test("pool grow: pending pilots count, and --max bounds grown plus pending", () => {
  assertEquals(pilotsToSubmit({ ...base, demand: 8, free: 0, pending: 2 }).submit, 0);
  assertEquals(pilotsToSubmit({ ...base, demand: 100, free: 0, grown: 8, pending: 1 }).submit, 1);
  assertEquals(pilotsToSubmit({ ...base, demand: 100, free: 0, grown: 9, pending: 1 }).submit, 0);
});
