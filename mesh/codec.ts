/**
 * The CBOR wire codec: encode any plain value, decode with a size limit and a schema check.
 *
 * @module
 */
// The plain-JS build: cbor-x's Node entry loads the native cbor-extract addon, which crashes Bun binaries.
import { Decoder, Encoder } from "cbor-x/decode";
import * as v from "valibot";
import { MalformedMessageError, MessageTooLargeError } from "./errors.ts";

const encoder = new Encoder({ useRecords: false, mapsAsObjects: true, tagUint8Array: false });
const decoder = new Decoder({ useRecords: false, mapsAsObjects: true });

/** Default maximum size of one wire message, in bytes. */
export const DEFAULT_MAX_MESSAGE_BYTES = 1024 * 1024;

/** Encodes a value as CBOR. */
export function encode(value: unknown): Uint8Array {
  return encoder.encode(value);
}

/** Options for {@linkcode decode}. */
export interface DecodeOptions {
  /** Name of the protocol or topic, for error messages. */
  what?: string;
  /** Maximum accepted size in bytes (default 1 MiB). */
  maxBytes?: number;
}

/**
 * Decodes CBOR bytes and checks them against a valibot schema.
 *
 * @throws {MessageTooLargeError} when the bytes exceed `maxBytes`
 * @throws {MalformedMessageError} when the bytes are not CBOR or do not match the schema
 */
export function decode<S extends v.GenericSchema>(
  bytes: Uint8Array,
  schema: S,
  options: DecodeOptions = {},
): v.InferOutput<S> {
  const what = options.what ?? "message";
  const limit = options.maxBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  if (bytes.byteLength > limit) throw new MessageTooLargeError(bytes.byteLength, limit);
  let raw: unknown;
  try {
    raw = decoder.decode(bytes);
  } catch (cause) {
    throw new MalformedMessageError(what, "not valid CBOR", { cause });
  }
  return check(raw, schema, what);
}

/**
 * Checks an already decoded value against a valibot schema.
 *
 * @throws {MalformedMessageError} naming the first offending field
 */
export function check<S extends v.GenericSchema>(
  value: unknown,
  schema: S,
  what = "message",
): v.InferOutput<S> {
  const result = v.safeParse(schema, value);
  if (!result.success) {
    const issue = result.issues[0];
    const path = issue.path?.map((p) => String(p.key)).join(".") ?? "";
    throw new MalformedMessageError(what, `${path ? `"${path}": ` : ""}${issue.message}`);
  }
  return result.output;
}
