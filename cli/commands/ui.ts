/**
 * `shoal ui`: a light peer serving the live dashboard of a session.
 *
 * @module
 */
import type { Command } from "commander";
import { randomBytes } from "node:crypto";
import { hostname, userInfo } from "node:os";
import { startFeed, startUiServer } from "../../ui/mod.ts";
import { ExitCode } from "../errors.ts";
import { printJson } from "../format.ts";
import { connectLightPeer } from "../light_peer.ts";
import { hostPortOption } from "../options.ts";
import { openSession } from "../session.ts";

interface UiOptions {
  listen: string;
  json?: boolean;
}

/** Who the environments' buttons act as: the user running the dashboard, on its host. */
function who(): string {
  let user = "user";
  try {
    user = userInfo().username;
  } catch { /* no passwd entry */ }
  return `${user}@${hostname()} (dashboard)`;
}

/** Registers `shoal ui`. */
export function registerUi(program: Command): void {
  program.command("ui")
    .option(
      "--listen <host:port>",
      "where to serve it (port 0 picks a free one; another host than loopback exposes it to the network)",
      hostPortOption("dashboard address"),
      "127.0.0.1:0",
    )
    .option("--json", 'print {"url", "address", "token"} on one line instead of a sentence')
    .addHelpText(
      "after",
      `
The URL printed carries a random access token: the page can send commands into the mesh, so without the
token every request is refused (401). The browser keeps it in a cookie after the first visit. Environment
events pressed on the page run here, as \`shoal env control\` would (hooks included), recorded as
"<user>@<host> (dashboard)". Runs until SIGINT or SIGTERM (Ctrl-C).

Examples:
  $ shoal ui                                  # http://127.0.0.1:<free port>/?token=…
  $ shoal ui --listen 127.0.0.1:8080
  $ shoal ui --session lab --json | jq -r .url`,
    )
    .action(async (opts: UiOptions, cmd: Command) => {
      const { session: name } = cmd.optsWithGlobals<{ session: string }>();
      const session = await openSession(name);
      await using peer = await connectLightPeer(session);
      await using feed = await startFeed({ node: peer.node, via: peer.agent, sessionId: session.record.id });
      const token = randomBytes(24).toString("base64url");
      await using server = await startUiServer({
        listen: opts.listen,
        token,
        feed,
        session: name,
        by: who(),
      });
      if (opts.json) printJson({ url: server.url, address: server.address, token });
      else process.stdout.write(`Dashboard of session "${name}": ${server.url}\n`);
      await new Promise<void>((resolve) => {
        process.once("SIGINT", () => {
          process.exitCode = ExitCode.interrupted;
          resolve();
        });
        process.once("SIGTERM", () => resolve());
      });
    });
}
