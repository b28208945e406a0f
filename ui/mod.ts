/**
 * The dashboard (`shoal ui`): a light peer's {@linkcode Feed} of the mesh and the HTTP server of the
 * embedded page ({@linkcode startUiServer}), token-protected, live through server-sent events.
 *
 * @example
 * ```ts
 * import { startFeed, startUiServer } from "./mod.ts";
 * await using feed = await startFeed({ node, via, sessionId });
 * await using ui = await startUiServer({ listen: "127.0.0.1:0", token, feed, session: "default" });
 * console.log(ui.url);
 * ```
 *
 * @module
 */
export { Feed, startFeed } from "./feed.ts";
export type { AgentView, FeedInit, FeedMessage, TaskView, TopologyView } from "./feed.ts";
export { EnvFeed, envView } from "./envs.ts";
export type { EnvControlView, EnvFeedInit, EnvView } from "./envs.ts";
export { UiListenError } from "./errors.ts";
export { startUiServer } from "./server.ts";
export type { UiServer, UiServerInit } from "./server.ts";
