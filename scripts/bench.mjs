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

// A mock provider on loopback stands in for OpenAI, so resolve has a key to hand out.
const { mock, stop, createOwnerKey } = await startLocalWorker({
  port,
  state: process.env.BENCH_STATE,
  adminToken,
});

try {
  const ownerKey = await createOwnerKey("bench");
  const owner = { authorization: `Bearer ${ownerKey}`, "content-type": "application/json" };
  const verified = await fetch(`${base}/v1/keys`, { method: "POST", headers: owner, body: JSON.stringify({ name: "verified" }) });
  const verifiedKey = (await verified.json()).key;
  const configured = await fetch(`${base}/v1/providers/openai`, {
    method: "PUT",
    headers: owner,
    body: JSON.stringify({ api_key: "sk-proj-bench", api_host: `${mock.url}/openai/v1` }),
  });
  if (configured.status !== 200) throw new Error(`provider configure answered ${configured.status}: ${await configured.text()}`);

  const routes = [
    { name: "GET /healthz", path: "/healthz", headers: {} },
    { name: "GET /v1/me (owner key)", path: "/v1/me", headers: { authorization: `Bearer ${ownerKey}` } },
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

  // Warm the isolate so the first measured route does not pay for start-up.
  await run(routes[0], 1);

  const rows = [];
  for (const connections of [1, 8]) {
    let healthRps = null;
    for (const route of routes) {
      const result = await run(route, connections);
      const rps = result.requests.average;
      healthRps ??= rps;
      const non2xx = result.non2xx;
      rows.push({
        route: route.name,
        connections,
        "req/s": rps.toFixed(0),
        "p50 ms": result.latency.p50,
        "p99 ms": result.latency.p99,
        "vs /healthz": `${((rps / healthRps) * 100).toFixed(0)}%`,
        "non-2xx": non2xx,
        errors: result.errors,
      });
    }
  }

  const wasm = readFileSync("build/index_bg.wasm");
  console.log(`\nkeywarden benchmark: wrangler dev (workerd) on 127.0.0.1, ${seconds}s per run, autocannon in a second process\n`);
  console.table(rows);
  console.log(`wasm: ${(wasm.length / 1024).toFixed(1)} KiB raw, ${(gzipSync(wasm).length / 1024).toFixed(1)} KiB gzipped\n`);
} finally {
  stop();
  process.exit(0);
}
