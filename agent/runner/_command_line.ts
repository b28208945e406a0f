/**
 * DDS `exe` lines: split into argv when no shell is needed, else wrap for `/bin/sh -c`.
 *
 * @module
 */

/** What {@linkcode analyzeCommandLine} found out about a line. */
export interface CommandLineInfo {
  /** The words, quotes removed, when the line can be run without a shell. */
  argv?: string[];
  /** True when `exec ` may prefix the line in a shell: a single command that is not a builtin. */
  simple: boolean;
}

/** Characters that mean shell syntax when unquoted anywhere in a word. */
const SPECIAL = new Set(["$", "`", "|", "&", ";", "<", ">", "(", ")", "*", "?", "[", "]", "{", "}", "\n"]);
/** Characters that split a line into several commands; `exec` must not prefix such a line. */
const COMPOUND = new Set(["|", "&", ";", "(", ")", "{", "}", "\n"]);
/** Inside double quotes, a backslash escapes only these. */
const DQ_ESCAPABLE = new Set(["$", "`", '"', "\\", "\n"]);
/** First words that `exec` cannot run: reserved words and builtins. */
const NOT_EXECABLE = new Set([
  "if",
  "then",
  "else",
  "elif",
  "fi",
  "do",
  "done",
  "case",
  "esac",
  "while",
  "until",
  "for",
  "in",
  "!",
  ".",
  ":",
  "source",
  "exec",
  "eval",
  "exit",
  "export",
  "readonly",
  "set",
  "unset",
  "shift",
  "trap",
  "cd",
  "ulimit",
  "umask",
  "alias",
  "read",
  "wait",
  "command",
  "return",
  "break",
  "continue",
  "times",
]);

/**
 * Splits a command line as `/bin/sh` would, when it holds only words, spaces and quotes.
 * Anything the shell would expand or interpret (`$`, backticks, pipes, redirections, globs, `~`, comments,
 * leading `VAR=value`, an unclosed quote) leaves `argv` unset: the line must go through the shell.
 */
export function analyzeCommandLine(line: string): CommandLineInfo {
  const words: string[] = [];
  const rawFirst: string[] = [];
  let word = "";
  let inWord = false;
  let needsShell = false;
  let compound = false;
  let i = 0;
  const endWord = () => {
    if (inWord) words.push(word);
    word = "";
    inWord = false;
  };
  while (i < line.length) {
    const c = line[i]!;
    if (words.length === 0) rawFirst.push(c);
    if (c === " " || c === "\t") {
      endWord();
      i++;
    } else if (c === "'") {
      const end = line.indexOf("'", i + 1);
      if (end < 0) return { simple: false };
      word += line.slice(i + 1, end);
      inWord = true;
      i = end + 1;
    } else if (c === '"') {
      inWord = true;
      for (i++; i < line.length && line[i] !== '"'; i++) {
        const d = line[i]!;
        if (d === "$" || d === "`") needsShell = true;
        if (d === "\\" && DQ_ESCAPABLE.has(line[i + 1] ?? "")) word += line[++i];
        else word += d;
      }
      if (i >= line.length) return { simple: false };
      i++;
    } else if (c === "\\") {
      if (i + 1 >= line.length) return { simple: false };
      if (line[i + 1] !== "\n") word += line[i + 1];
      inWord = true;
      i += 2;
    } else {
      if (SPECIAL.has(c)) needsShell = true;
      if (COMPOUND.has(c)) compound = true;
      // `#` starts a comment and `~` expands only at the start of a word; `=` makes a leading assignment.
      if (!inWord && (c === "#" || c === "~")) needsShell = true;
      if (c === "=" && words.length === 0 && /^[A-Za-z_][A-Za-z0-9_]*$/.test(word)) {
        compound = needsShell = true;
      }
      word += c;
      inWord = true;
      i++;
    }
  }
  endWord();
  const first = rawFirst.join("").trim();
  const builtin = NOT_EXECABLE.has(first);
  const simple = !compound && words.length > 0 && !builtin;
  return needsShell || builtin ? { simple } : { argv: words, simple };
}

/** Quotes a string for `/bin/sh` with single quotes. */
export function shellQuote(text: string): string {
  return /^[A-Za-z0-9_./:=@%+,-]+$/.test(text) ? text : `'${text.replaceAll("'", `'\\''`)}'`;
}

/** The program and arguments to spawn for a line, optionally sourcing an env script first. */
export function commandFor(
  line: string,
  options: { shell: string; envFile?: string },
): { file: string; args: string[] } {
  const info = analyzeCommandLine(line);
  if (info.argv && info.argv.length > 0 && options.envFile === undefined) {
    return { file: info.argv[0]!, args: info.argv.slice(1) };
  }
  const body = info.simple ? `exec ${line}` : line;
  const script = options.envFile === undefined ? body : `. ${shellQuote(options.envFile)}\n${body}`;
  return { file: options.shell, args: ["-c", script] };
}
