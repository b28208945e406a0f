/** The shoal version, announced with each agent's membership and printed by `shoal --version`. */
export const SHOAL_VERSION = "0.1.0";
