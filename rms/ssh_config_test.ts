import { assert, assertEquals, assertThrows } from "../tests/_assert.ts";
import { RmsConfigError } from "./errors.ts";
import { DEFAULT_WORK_DIR, parseSshConfig, splitWords, sshHosts } from "./ssh_config.ts";

Deno.test("ssh config: DDS format with an environment block, comments and options with spaces", () => {
  const config = parseSshConfig(
    "hosts.cfg",
    [
      "@bash_begin@",
      "export SHOAL_LISTEN=/ip4/127.0.0.1/tcp/0",
      "module load gcc",
      "@bash_end@",
      "",
      "# id, user@host, ssh options, work dir, slots",
      "wn1, alice@node1, -p 2222 -o 'ProxyJump=gw,gw2', /tmp/shoal, 8",
      "wn2, node2, , ~/shoal, 2",
    ].join("\n"),
  );
  assertEquals(config.env, "export SHOAL_LISTEN=/ip4/127.0.0.1/tcp/0\nmodule load gcc");
  const hosts = sshHosts(config);
  assertEquals(hosts.map((h) => [h.id, h.destination, h.options, h.workDir, h.slots]), [
    ["wn1", "alice@node1", ["-p", "2222", "-o", "ProxyJump=gw,gw2"], "/tmp/shoal", 8],
    ["wn2", "node2", [], "~/shoal", 2],
  ]);
});

Deno.test("ssh config: DDS format mistakes name the file and line", () => {
  const cases: [string, string][] = [
    ["wn1, alice@node1, /tmp/x, 4", "5 fields"],
    ["wn1, alice@node1, , /tmp/x, many", "slots"],
    ["wn1, a@b, , /x, 1\nwn1, a@c, , /x, 1", "appears twice"],
    ["@bash_begin@\necho hi", "without @bash_end@"],
    ["# only a comment", "No worker lines"],
  ];
  for (const [text, part] of cases) {
    const err = assertThrows(() => parseSshConfig("hosts.cfg", text), RmsConfigError);
    assert(err.message.includes(part), `${err.message} should mention ${part}`);
    assert(err.message.startsWith("hosts.cfg"), err.message);
  }
  const err = assertThrows(
    () => parseSshConfig("h.cfg", "wn1, a@b, , /x, 1\nwn2, a@c, , /x"),
    RmsConfigError,
  );
  assertEquals(err.line, 2);
});

Deno.test("ssh config: the native JSON form, with defaults and per-host overrides", () => {
  const config = parseSshConfig(
    "hosts.json",
    JSON.stringify({
      sshOptions: "-o Compression=yes",
      listen: "/ip4/0.0.0.0/tcp/7070",
      hosts: [{ host: "bob@n1", port: 2200, slots: 4, agents: 2 }, {
        id: "n2",
        host: "n2",
        workDir: "/scratch/s",
      }],
    }),
  );
  const hosts = sshHosts(config);
  assertEquals(hosts[0], {
    id: "n1",
    destination: "bob@n1",
    options: ["-o", "Compression=yes", "-p", "2200"],
    workDir: DEFAULT_WORK_DIR,
    agents: 2,
    slots: 4,
    listen: "/ip4/0.0.0.0/tcp/7070",
  });
  assertEquals(hosts[1]?.workDir, "/scratch/s");
  const err = assertThrows(
    () => parseSshConfig("h.json", '{"hosts": [{"host": "x", "slots": 0}]}'),
    RmsConfigError,
  );
  assert(err.message.includes("hosts.0.slots"), err.message);
});

Deno.test("ssh config: options split like a shell would", () => {
  assertEquals(splitWords(`-i "my key" -o 'A=b c' x\\ y`), ["-i", "my key", "-o", "A=b c", "x y"]);
  assertEquals(splitWords("  "), []);
  assertThrows(() => splitWords(`-o "open`), RangeError);
});
