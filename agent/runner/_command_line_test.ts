import { assertEquals } from "../../tests/_assert.ts";
import { analyzeCommandLine, commandFor, shellQuote } from "./_command_line.ts";

Deno.test("command line: plain words are split without a shell", () => {
  assertEquals(analyzeCommandLine("sleep 100"), { argv: ["sleep", "100"], simple: true });
  assertEquals(analyzeCommandLine("  ./myexe   --x\t1 "), { argv: ["./myexe", "--x", "1"], simple: true });
});

Deno.test("command line: quotes and backslashes are honoured as /bin/sh does", () => {
  assertEquals(analyzeCommandLine(`./myexe --x "a b" 'c "d"' e\\ f "g\\"h" "i\\j" ''`).argv, [
    "./myexe",
    "--x",
    "a b",
    'c "d"',
    "e f",
    'g"h',
    "i\\j",
    "",
  ]);
  assertEquals(analyzeCommandLine(`echo '$HOME' "a|b;c"`).argv, ["echo", "$HOME", "a|b;c"]);
});

Deno.test("command line: shell syntax sends the line to the shell", () => {
  for (
    const line of [
      "$DDS_LOCATION/tests/task-test_env --taskIndex 3",
      `echo "$HOME"`,
      "echo `date`",
      "a | b",
      "a; b",
      "a && b",
      "a > out",
      "a < in",
      "ls *.txt",
      "ls file?",
      "cd dir",
      "FOO=1 ./exe",
      "~/bin/exe",
      "exe # comment",
      `echo "unclosed`,
    ]
  ) {
    assertEquals(analyzeCommandLine(line).argv, undefined, line);
  }
});

Deno.test("command line: exec prefixes only single non-builtin commands", () => {
  assertEquals(analyzeCommandLine("$X/exe --a").simple, true);
  assertEquals(analyzeCommandLine("exe > out").simple, true);
  for (
    const line of ["a; b", "a | b", "a && b", "FOO=1 exe", "cd x", "exit 3", "(a)", "if true; then a; fi"]
  ) {
    assertEquals(analyzeCommandLine(line).simple, false, line);
  }
});

Deno.test("command line: commandFor picks direct exec, sh -c 'exec ...', or sources the env script", () => {
  assertEquals(commandFor("sleep 1", { shell: "/bin/sh" }), { file: "sleep", args: ["1"] });
  assertEquals(commandFor("$X/exe", { shell: "/bin/sh" }), { file: "/bin/sh", args: ["-c", "exec $X/exe"] });
  assertEquals(commandFor("a; b", { shell: "/bin/sh" }), { file: "/bin/sh", args: ["-c", "a; b"] });
  assertEquals(commandFor("sleep 1", { shell: "/bin/sh", envFile: "/s b/env.sh" }), {
    file: "/bin/sh",
    args: ["-c", ". '/s b/env.sh'\nexec sleep 1"],
  });
  assertEquals(shellQuote("it's"), `'it'\\''s'`);
});
