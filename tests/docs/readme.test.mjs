// The README's examples against the real binary on the embedded defaults (what `make run`
// serves), so that they stay true (issue 11):
// - every `curl` command of its sh blocks runs as written (only the address is changed to the
//   test's free port), in order, against one server, and must succeed (2xx); where the README
//   shows the answer on the next line (`# {...}`), the answer must have the same members with
//   the same values (except ids and times, which change);
// - every js block runs with the OpenAI SDK from npm and must exit 0;
// - every python block must parse (the Python SDK is not installable here), and every model a
//   block names must be one the defaults list as usable in GET /v1/models.
// A block preceded by `<!-- readme.test.mjs: not run (...) -->` is skipped (a provider key and
// the network are needed); commands other than curl (make ...) are not run.
//
//   node readme.test.mjs <path to orchestra> <path to README.md>
import test from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { startOrchestra } from "./server.mjs";

const [binary, readmePath] = process.argv.slice(2);
if (!binary || !readmePath) {
  console.error("usage: node readme.test.mjs <orchestra binary> <README.md>");
  process.exit(2);
}
const here = dirname(fileURLToPath(import.meta.url));
const SKIP = "<!-- readme.test.mjs: not run";
const VOLATILE = new Set(["checkpoint_id", "created_at", "id", "created"]);

// The fenced blocks: {lang, text, skipped, line}.
function blocks(markdown) {
  const out = [];
  const lines = markdown.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const open = lines[i].match(/^```(\w*)\s*$/);
    if (!open || !open[1]) continue;
    let previous = i - 1;
    while (previous >= 0 && lines[previous].trim() === "") previous--;
    const skipped = previous >= 0 && lines[previous].startsWith(SKIP);
    const body = [];
    let j = i + 1;
    while (j < lines.length && !lines[j].startsWith("```")) body.push(lines[j++]);
    out.push({ lang: open[1], text: body.join("\n"), skipped, line: i + 1 });
    i = j;
  }
  return out;
}

// The commands of an sh block (continuation lines joined), each with the `# ` line after it.
function commands(text) {
  const out = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i];
    if (line.trim() === "" || line.trimStart().startsWith("#")) continue;
    while (line.endsWith("\\") && i + 1 < lines.length) line = line + "\n" + lines[++i];
    const next = lines[i + 1] ?? "";
    const expected = next.startsWith("# {") ? next.slice(2) : null;
    out.push({ command: line, expected });
  }
  return out;
}

function localize(text, port) {
  return text.replaceAll("localhost:8080", `127.0.0.1:${port}`).replaceAll("127.0.0.1:8080", `127.0.0.1:${port}`);
}

const readme = readFileSync(readmePath, "utf8");
const all = blocks(readme);

test("the README's examples run as written on the embedded defaults", async (t) => {
  const server = await startOrchestra(binary);
  t.after(() => server.stop());
  const listed = await (await fetch(`${server.base}/v1/models`)).json();
  const usable = new Set(listed.data.filter((m) => m.usable).map((m) => m.id));

  const run = all.filter((b) => !b.skipped);
  assert.ok(run.some((b) => b.lang === "sh"), "no sh block found");
  assert.ok(run.some((b) => b.lang === "js"), "no js block found");

  await t.test("every model named is usable on the defaults", () => {
    for (const b of run) {
      for (const m of b.text.matchAll(/"?model"?\s*[:=]\s*\\?["']([^"'\\]+)\\?["']/g)) {
        assert.ok(usable.has(m[1]), `README line ${b.line}: model ${m[1]} is not usable on the defaults (${[...usable]})`);
      }
    }
  });

  let ran = 0;
  for (const b of run.filter((x) => x.lang === "sh")) {
    for (const { command, expected } of commands(b.text)) {
      if (!command.startsWith("curl ")) continue;
      ran++;
      await t.test(`README line ${b.line}: ${command.split("\n")[0].slice(0, 100)}`, () => {
        const script =
          "set -o pipefail\n" +
          // --fail-with-body: a 4xx/5xx fails; 23 is curl's write error when `| head` closes early.
          'curl() { command curl --fail-with-body "$@"; local rc=$?; [ "$rc" -eq 23 ] && return 0; return "$rc"; }\n' +
          localize(command, server.port);
        const r = spawnSync("bash", ["-c", script], { encoding: "utf8", timeout: 30000 });
        assert.equal(r.status, 0, `exit ${r.status}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
        assert.ok(r.stdout.length > 0, "no output");
        if (expected) {
          const want = JSON.parse(expected);
          const got = JSON.parse(r.stdout);
          assert.deepEqual(Object.keys(got).sort(), Object.keys(want).sort(), r.stdout);
          for (const [k, v] of Object.entries(want)) if (!VOLATILE.has(k)) assert.deepEqual(got[k], v, `member ${k}: ${r.stdout}`);
        }
      });
    }
  }
  assert.ok(ran >= 10, `only ${ran} curl commands found`);

  for (const b of run.filter((x) => x.lang === "js")) {
    await t.test(`README line ${b.line}: the JavaScript example runs with the OpenAI SDK`, () => {
      const dir = mkdtempSync(join(tmpdir(), "orchestra-readme-"));
      try {
        symlinkSync(join(here, "node_modules"), join(dir, "node_modules"), "dir");
        const file = join(dir, "example.mjs");
        writeFileSync(file, localize(b.text, server.port));
        const env = { ...process.env };
        delete env.ORCHESTRA_KEY;
        const r = spawnSync(process.execPath, [file], { encoding: "utf8", timeout: 30000, env });
        assert.equal(r.status, 0, `stdout: ${r.stdout}\nstderr: ${r.stderr}`);
        assert.match(r.stdout, /Orchestra routes requests to model providers/);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }

  const python = spawnSync("python3", ["--version"]).status === 0;
  for (const b of run.filter((x) => x.lang === "python")) {
    await t.test(`README line ${b.line}: the Python example parses`, { skip: python ? false : "python3 is not installed" }, () => {
      execFileSync("python3", ["-c", "import ast, sys; ast.parse(sys.stdin.read())"], { input: b.text });
    });
  }
});
