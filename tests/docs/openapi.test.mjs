// GET /openapi.json (issue 11) from the real binary: a valid OpenAPI 3.1 document by two
// validators from npm, complete (every route the server registered is described: none is an
// undescribed stub) and true (every described operation not marked pending is routed by the
// server: it answers something other than "no route" or 405).
//
//   node openapi.test.mjs <path to orchestra>
import test from "node:test";
import assert from "node:assert/strict";
import { Validator } from "@seriousme/openapi-schema-validator";
import SwaggerParser from "@apidevtools/swagger-parser";
import { startOrchestra } from "./server.mjs";

const binary = process.argv[2];
if (!binary) {
  console.error("usage: node openapi.test.mjs <orchestra binary>");
  process.exit(2);
}

const METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

test("/openapi.json is a complete, valid OpenAPI 3.1 document of what the server routes", async (t) => {
  const server = await startOrchestra(binary);
  t.after(() => server.stop());

  const response = await fetch(`${server.base}/openapi.json`);
  assert.equal(response.status, 200);
  assert.match(response.headers.get("content-type"), /^application\/json/);
  const doc = await response.json();
  assert.equal(doc.openapi, "3.1.0");
  const version = await (await fetch(`${server.base}/`)).json();
  assert.equal(doc.info.version, version.version);

  await t.test("valid for @seriousme/openapi-schema-validator (the 3.1 schema, refs resolved)", async () => {
    const result = await new Validator().validate(structuredClone(doc));
    assert.ok(result.valid, JSON.stringify(result.errors, null, 2));
  });
  await t.test("valid for @apidevtools/swagger-parser", async () => {
    await SwaggerParser.validate(structuredClone(doc));
  });

  const operations = [];
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const method of METHODS) if (item[method]) operations.push({ path, method, op: item[method], item });
  }

  await t.test("every operation has a unique operationId, a summary and declares its path parameters", () => {
    const ids = new Set();
    for (const { path, method, op, item } of operations) {
      const where = `${method.toUpperCase()} ${path}`;
      assert.ok(op.summary, `${where} has no summary`);
      if (!op["x-orchestra-undescribed"]) {
        assert.ok(op.operationId, `${where} has no operationId`);
        assert.ok(!ids.has(op.operationId), `${where}: operationId ${op.operationId} twice`);
        ids.add(op.operationId);
      }
      const inPath = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]).sort();
      const declared = [...(item.parameters ?? []), ...(op.parameters ?? [])]
        .filter((p) => p.in === "path")
        .map((p) => p.name)
        .sort();
      assert.deepEqual(declared, inPath, `${where}: path parameters`);
    }
  });

  await t.test("every route the server registered is described", () => {
    const stubs = operations.filter((o) => o.op["x-orchestra-undescribed"]).map((o) => `${o.method.toUpperCase()} ${o.path}`);
    assert.deepEqual(stubs, [], "routes registered but not described in src/api/openapi.json");
    const warnings = server.lines.filter((l) => l.includes("/openapi.json") && l.includes('"WARNING"'));
    assert.deepEqual(warnings, []);
  });

  await t.test("security follows each route's access; the probes are public", () => {
    for (const path of ["/", "/healthz", "/health", "/readyz", "/startupz", "/warmup", "/openapi.json"]) {
      const op = doc.paths[path].get ?? doc.paths[path].post;
      assert.deepEqual(op.security, [], path);
    }
    assert.equal(doc.paths["/metrics"].get["x-orchestra-scope"], "admin");
    assert.equal(doc.paths["/memory/store"].post["x-orchestra-scope"], "user");
    assert.deepEqual(doc.paths["/v1/models"].get.security, [{ bearer: [] }]);
  });

  await t.test("every described operation not marked pending is routed by the server", async () => {
    const pending = [];
    for (const { path, method, op } of operations) {
      const where = `${method.toUpperCase()} ${path}`;
      if (op["x-orchestra-pending"]) {
        pending.push(where);
        continue;
      }
      const target = path.replace(/\{[^}]+\}/g, "docs-probe");
      const r = await fetch(server.base + target, { method: method.toUpperCase(), body: method === "get" ? undefined : "{}" });
      const text = await r.text();
      assert.notEqual(r.status, 405, `${where}: ${text}`);
      assert.ok(!(r.status === 404 && text.includes("no route for")), `${where} is described but not routed: ${text}`);
    }
    // The routes being added by other changes are described, so the document is complete.
    for (const expected of ["POST /models/versions/register", "POST /documents/search", "POST /admin/keys", "GET /admin/spend", "GET /v1/me", "POST /utils/token_counter"]) {
      assert.ok(pending.includes(expected) || operations.some((o) => `${o.method.toUpperCase()} ${o.path}` === expected), expected);
    }
  });
});
