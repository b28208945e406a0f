/**
 * The localhost plug-in against the shared RMS contract.
 */
import { rmsContract } from "./rms_contract.ts";

rmsContract("localhost", () => Promise.resolve({ count: 2, [Symbol.asyncDispose]: () => Promise.resolve() }));
