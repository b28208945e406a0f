import { assertEquals, assertThrows } from "../tests/_assert.ts";
import * as v from "valibot";
import { decode, encode } from "./codec.ts";
import { MalformedMessageError, MessageTooLargeError } from "./errors.ts";

const Schema = v.object({ a: v.number(), b: v.string() });

Deno.test("codec: a value round-trips through CBOR and its schema", () => {
  const out = decode(encode({ a: 1, b: "x" }), Schema);
  assertEquals(out, { a: 1, b: "x" });
});

Deno.test("codec: bytes that are not CBOR are refused as malformed", () => {
  assertThrows(() => decode(new Uint8Array([0xff, 0xfe, 0x01]), Schema), MalformedMessageError);
});

Deno.test("codec: a value of the wrong shape is refused naming the field", () => {
  const err = assertThrows(() => decode(encode({ a: "1", b: "x" }), Schema), MalformedMessageError);
  assertEquals(err.message.includes('"a"'), true);
});

Deno.test("codec: an oversized message is refused before decoding", () => {
  assertThrows(
    () => decode(encode({ a: 1, b: "x".repeat(100) }), Schema, { maxBytes: 50 }),
    MessageTooLargeError,
  );
});
