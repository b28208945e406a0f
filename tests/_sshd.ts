/**
 * A real OpenSSH server on 127.0.0.1 for the ssh plug-in's tests: its own host key, key-based root
 * login with a generated client key (and a second key it refuses), and a high port.
 *
 * Port choice: a random port in 20000–29999 (below Linux's ephemeral range, so outgoing connections of
 * parallel tests rarely hold it); when sshd cannot bind it, another is tried. The bound port is read back
 * from sshd's "Server listening on" log line.
 *
 * @module
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { userInfo } from "node:os";
import { join } from "node:path";

const SSHD = "/usr/sbin/sshd";

/** Why the ssh tests cannot run here, or undefined when they can. */
export function sshdMissing(): string | undefined {
  for (const bin of [SSHD, "/usr/bin/ssh", "/usr/bin/ssh-keygen"]) {
    if (!existsSync(bin)) return `${bin} is not installed (run .ci/setup-sshd.sh)`;
  }
  return undefined;
}

/** A running test sshd. */
export interface TestSshd extends AsyncDisposable {
  port: number;
  dir: string;
  /** `user@127.0.0.1`. */
  destination: string;
  /** An authorised private key. */
  key: string;
  /** A private key the server refuses. */
  badKey: string;
  /** ssh options that reach this server with `key` and check its host key. */
  options: string[];
  /** An ssh config file defining host alias `shoal-test` (port, key, known hosts). */
  configFile: string;
}

function keygen(file: string): void {
  const r = new Deno.Command("ssh-keygen", {
    args: ["-q", "-t", "ed25519", "-N", "", "-C", "shoal-test", "-f", file],
    stdout: "null",
    stderr: "piped",
  }).outputSync();
  if (!r.success) throw new Error(`ssh-keygen failed: ${new TextDecoder().decode(r.stderr)}`);
}

/** PIDs of the processes below `pid` (children first found, grandchildren after). */
function descendants(pid: number): number[] {
  const parents = new Map<number, number>();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      parents.set(Number(name), Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]));
    } catch { /* exited */ }
  }
  const out: number[] = [];
  const queue = [pid];
  while (queue.length) {
    const p = queue.shift()!;
    for (const [child, parent] of parents) {
      if (parent === p) {
        out.push(child);
        queue.push(child);
      }
    }
  }
  return out;
}

/** Starts sshd with fresh keys under `dir`. */
export async function startSshd(dir: string): Promise<TestSshd> {
  mkdirSync(dir, { recursive: true });
  mkdirSync("/run/sshd", { recursive: true });
  const hostKey = join(dir, "host_ed25519");
  const key = join(dir, "id_ed25519");
  const badKey = join(dir, "id_refused");
  keygen(hostKey);
  keygen(key);
  keygen(badKey);
  writeFileSync(join(dir, "authorized_keys"), readFileSync(`${key}.pub`));
  const user = userInfo().username;
  for (let attempt = 0; attempt < 12; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 10_000);
    const conf = join(dir, "sshd_config");
    writeFileSync(
      conf,
      [
        `Port ${port}`,
        "ListenAddress 127.0.0.1",
        `HostKey ${hostKey}`,
        `PidFile ${join(dir, "sshd.pid")}`,
        "PermitRootLogin prohibit-password",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "PubkeyAuthentication yes",
        "UsePAM no",
        "StrictModes no",
        `AuthorizedKeysFile ${join(dir, "authorized_keys")}`,
        "LogLevel INFO",
        "MaxSessions 64",
        "MaxStartups 64:30:128",
        "Subsystem sftp internal-sftp",
        "",
      ].join("\n"),
    );
    const child = new Deno.Command(SSHD, {
      args: ["-D", "-e", "-f", conf],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    })
      .spawn();
    let log = "";
    const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
    let listening = false;
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      const timer = new Promise<{ done: true; value: undefined }>((r) =>
        setTimeout(() => r({ done: true, value: undefined }), Math.max(0, deadline - Date.now()))
      );
      const { done, value } = await Promise.race([reader.read(), timer]);
      if (value) log += value;
      if (/Server listening on 127\.0\.0\.1 port/.test(log)) {
        listening = true;
        break;
      }
      if (done) break;
    }
    // Keep draining sshd's log so it never blocks on a full pipe.
    const draining = (async () => {
      try {
        while (!(await reader.read()).done) { /* discard */ }
      } catch { /* closed */ }
    })();
    if (!listening) {
      try {
        child.kill("SIGKILL");
      } catch { /* exited */ }
      await child.status;
      await draining;
      if (/Address already in use|Cannot bind/.test(log)) continue;
      throw new Error(`sshd did not start:\n${log}`);
    }
    const knownHosts = join(dir, "known_hosts");
    writeFileSync(
      knownHosts,
      `[127.0.0.1]:${port} ${readFileSync(`${hostKey}.pub`, "utf8").split(" ").slice(0, 2).join(" ")}\n`,
    );
    const configFile = join(dir, "ssh_config");
    writeFileSync(
      configFile,
      [
        "Host shoal-test",
        "  HostName 127.0.0.1",
        `  Port ${port}`,
        `  User ${user}`,
        `  IdentityFile ${key}`,
        "  IdentitiesOnly yes",
        `  UserKnownHostsFile ${knownHosts}`,
        "  StrictHostKeyChecking yes",
        "",
      ].join("\n"),
    );
    return {
      port,
      dir,
      destination: `${user}@127.0.0.1`,
      key,
      badKey,
      options: [
        "-p",
        String(port),
        "-i",
        key,
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        `UserKnownHostsFile=${knownHosts}`,
        "-o",
        "StrictHostKeyChecking=yes",
      ],
      configFile,
      async [Symbol.asyncDispose]() {
        // Per-connection sshd processes outlive the listener while ssh clients keep shared connections
        // (ControlPersist) open, and they hold the log pipe: stop them too.
        for (const pid of [...descendants(child.pid), child.pid]) {
          try {
            process.kill(pid, "SIGTERM");
          } catch { /* gone */ }
        }
        await child.status;
        await reader.cancel().catch(() => {});
        await draining;
      },
    };
  }
  throw new Error("sshd found no free port in 20000–29999 after 12 tries");
}
