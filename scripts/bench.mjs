// Starts `wrangler dev` on loopback, drives it with autocannon from this process, and prints
// requests per second and p50/p99 latency per route at 1 and 8 connections, plus the wasm size.
// It prints figures; it asserts nothing.
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import autocannon from "autocannon";
import { startMockProvider } from "../tests/e2e/mock-provider.mjs";

const port = Number(process.env.BENCH_PORT ?? 8797);
const seconds = Number(process.env.BENCH_SECONDS ?? 8);
const base = `http://127.0.0.1:${port}`;
const adminToken = process.env.ADMIN_TOKEN;

async function waitForHealth(child) {
  for (let i = 0; i < 240; i++) {
    if (child.exitCode !== null) throw new Error("wrangler dev exited");
    try {
      if ((await fetch(`${base}/healthz`)).ok) return;
    } catch {
      // not up yet
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error("wrangler dev did not become ready");
}

function run(route, connections) {
  const { path, method = "GET", headers = {}, body } = route;
  return new Promise((resolve, reject) => {
    autocannon({ url: `${base}${path}`, connections, duration: seconds, method, headers, body }, (error, result) =>
      error ? reject(error) : resolve(result),
    );
  });
}

// A mock provider on loopback stands in for OpenAI, so resolve has a key to hand out.
const mock = await startMockProvider();
const wrangler = spawn(
  "node_modules/.bin/wrangler",
  [
    "dev",
    "--port", String(port),
    "--ip", "127.0.0.1",
    "--persist-to", process.env.BENCH_STATE,
    "--var", "ALLOW_INSECURE_PROVIDER_HOSTS:true",
    "--show-interactive-dev-session=false",
    "--log-level", "error",
  ],
  { stdio: ["ignore", "ignore", "inherit"], env: process.env },
);
const stop = () => {
  if (wrangler.exitCode === null) wrangler.kill("SIGTERM");
  mock.close();
};
process.on("exit", stop);

try {
  await waitForHealth(wrangler);
  const created = await fetch(`${base}/v1/workspaces`, {
    method: "POST",
    headers: { authorization: `Bearer ${adminToken}`, "content-type": "application/json" },
    body: JSON.stringify({ name: "bench" }),
  });
  if (created.status !== 201) throw new Error(`workspace creation answered ${created.status}`);
  const ownerKey = (await created.json()).key.key;
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
