/** The shoal version, announced in heartbeats and printed by `shoal --version`. */
export const SHOAL_VERSION = "0.1.0";
