// Starts the real `orchestra` binary for a docs test: `serve` on the embedded defaults (what
// `make run` serves: no config file, no keys, the local models, SQLite) on a free loopback
// port, in a temporary working directory, and stops it with SIGTERM, waiting for its exit.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

export async function startOrchestra(binary) {
  const dir = mkdtempSync(join(tmpdir(), "orchestra-docs-"));
  const env = { ...process.env };
  // The defaults, whatever the developer's shell holds: no provider keys, no config, no $PORT.
  for (const name of ["OPENAI_API_KEY", "GEMINI_API_KEY", "ANTHROPIC_API_KEY", "ORCHESTRA_CONFIG", "PORT"]) {
    delete env[name];
  }
  const child = spawn(resolve(binary), ["serve", "--listen", "127.0.0.1:0"], { cwd: dir, env, stdio: ["ignore", "pipe", "pipe"] });
  const lines = [];
  let buffered = "";
  const exited = new Promise((done) => {
    child.on("exit", (code) => done(code ?? 128));
    child.on("error", (error) => {
      lines.push(String(error));
      done(127);
    });
  });
  const port = await new Promise((found, reject) => {
    const timer = setTimeout(() => reject(new Error("orchestra did not listen within 20 s:\n" + lines.join("\n"))), 20000);
    const onData = (chunk) => {
      buffered += chunk;
      let at;
      while ((at = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, at);
        buffered = buffered.slice(at + 1);
        lines.push(line);
        if (line.includes('"message":"listening"')) {
          clearTimeout(timer);
          found(Number(JSON.parse(line).address.split(":").pop()));
        }
      }
    };
    child.stdout.setEncoding("utf8").on("data", onData);
    child.stderr.setEncoding("utf8").on("data", onData);
    exited.then((code) => reject(new Error(`orchestra exited with ${code}:\n` + lines.join("\n"))));
  });
  return {
    port,
    base: `http://127.0.0.1:${port}`,
    lines,
    async stop() {
      child.kill("SIGTERM");
      const code = await exited;
      rmSync(dir, { recursive: true, force: true });
      return code;
    },
  };
}
