// Starts `wrangler dev` on loopback, drives it with autocannon from this process, and prints
// requests per second and p50/p99 latency per route at 1 and 8 connections, plus the wasm size.
// It prints figures; it asserts nothing.
import { readFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import autocannon from "autocannon";
import { startLocalWorker } from "./local-worker.mjs";

const port = Number(process.env.BENCH_PORT ?? 8797);
const seconds = Number(process.env.BENCH_SECONDS ?? 8);
const base = `http://127.0.0.1:${port}`;
const adminToken = process.env.ADMIN_TOKEN;

function run(route, connections) {
  const { path, method = "GET", headers = {}, body } = route;
  return new Promise((resolve, reject) => {
    autocannon({ url: `${base}${path}`, connections, duration: seconds, method, headers, body }, (error, result) =>
      error ? reject(error) : resolve(result),
    );
  });
}

/** Sets up a workspace with a verified key and a provider; returns the routes to measure. */
async function prepare(createOwnerKey, mock) {
  const ownerKey = await createOwnerKey("bench");
  const owner = { authorization: `Bearer ${ownerKey}`, "content-type": "application/json" };
  const verified = await fetch(`${base}/v1/keys`, { method: "POST", headers: owner, body: JSON.stringify({ name: "verified" }) });
  const verifiedKey = (await verified.json()).key;
  // Issue 16: the same /v1/me for a key that spends a credit and checks its allowlist per use.
  const guarded = await fetch(`${base}/v1/keys`, {
    method: "POST",
    headers: owner,
    body: JSON.stringify({ name: "guarded", credits: { remaining: 1_000_000_000_000 }, allowed_ips: ["203.0.113.0/24", "127.0.0.1", "::1"] }),
  });
  if (guarded.status !== 201) throw new Error(`guarded key answered ${guarded.status}: ${await guarded.text()}`);
  const guardedKey = (await guarded.json()).key;
  const configured = await fetch(`${base}/v1/providers/openai`, {
    method: "PUT",
    headers: owner,
    body: JSON.stringify({ api_key: "sk-proj-bench", api_host: `${mock.url}/openai/v1` }),
  });
  if (configured.status !== 200) throw new Error(`provider configure answered ${configured.status}: ${await configured.text()}`);
  return [
    { name: "GET /healthz", path: "/healthz", headers: {} },
    { name: "GET /v1/me", path: "/v1/me", headers: { authorization: `Bearer ${ownerKey}` } },
    {
      name: "GET /v1/me (credits + allowlist)",
      path: "/v1/me",
      headers: { authorization: `Bearer ${guardedKey}`, "cf-connecting-ip": "203.0.113.7" },
    },
    { name: "GET /v1/me (malformed key)", path: "/v1/me", headers: { authorization: "Bearer kw_live_malformed" } },
    {
      name: "POST /v1/keys/verify",
      path: "/v1/keys/verify",
      method: "POST",
      headers: owner,
      body: JSON.stringify({ key: verifiedKey, capabilities: [] }),
    },
    { name: "POST /v1/resolve", path: "/v1/resolve", method: "POST", headers: owner, body: JSON.stringify({}) },
  ];
}

/** D1 statements per successful /v1/me, from the Worker's and the objects' log lines. */
function statementsPerAuthentication(lines, from) {
  const seen = lines.slice(from);
  const authenticated = seen.filter((line) => line.route === "/v1/me" && line.status === 200);
  const worker = authenticated.reduce((sum, line) => sum + (line.d1_statements ?? 0), 0);
  const objects = seen.filter((line) => line.msg === "authority read-through").reduce((sum, line) => sum + line.d1_statements, 0);
  return { requests: authenticated.length, perRequest: authenticated.length ? (worker + objects) / authenticated.length : NaN };
}

const rows = [];
const statements = [];
// D1 alone first ("before"), then the Durable Object key authority ("after"), each on its own
// fresh local state so neither warms the other.
for (const authority of ["catalogue", "object"]) {
  const state = `${process.env.BENCH_STATE}-${authority}`;
  const { mock, lines, stop, createOwnerKey } = await startLocalWorker({
    port,
    state,
    adminToken,
    logs: "capture",
    vars: { KEY_AUTHORITY: authority },
  });
  try {
    const routes = await prepare(createOwnerKey, mock);
    // Warm the isolate (and the object) so the first measured route does not pay for start-up.
    await run(routes[0], 1);
    await run(routes[1], 1);
    for (const connections of [1, 8]) {
      let healthRps = null;
      for (const route of routes) {
        const from = lines.length;
        const result = await run(route, connections);
        const rps = result.requests.average;
        healthRps ??= rps;
        rows.push({
          authority,
          route: route.name,
          connections,
          "req/s": rps.toFixed(0),
          "p50 ms": result.latency.p50,
          "p99 ms": result.latency.p99,
          "vs /healthz": `${((rps / healthRps) * 100).toFixed(0)}%`,
          "non-2xx": result.non2xx,
          errors: result.errors,
        });
        if (route.name === "GET /v1/me") {
          const counted = statementsPerAuthentication(lines, from);
          statements.push({ authority, connections, "successful /v1/me logged": counted.requests, "D1 statements each": counted.perRequest.toFixed(3) });
        }
      }
    }
  } finally {
    stop();
  }
}

const wasm = readFileSync("build/index_bg.wasm");
console.log(`\nkeywarden benchmark: wrangler dev (workerd) on 127.0.0.1, ${seconds}s per run, autocannon in a second process`);
console.log("authority: catalogue = D1 on every authentication (before), object = a Durable Object per workspace (after)\n");
console.table(rows);
console.log("D1 statements per successful authentication (from the request log lines, before each response):");
console.table(statements);
console.log(`wasm: ${(wasm.length / 1024).toFixed(1)} KiB raw, ${(gzipSync(wasm).length / 1024).toFixed(1)} KiB gzipped\n`);
process.exit(0);
