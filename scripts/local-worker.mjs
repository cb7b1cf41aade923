// The built Worker under `wrangler dev` on loopback, beside the mock provider, for the scripts
// that measure or fuzz it from a second process (bench.mjs, model-list-memory.mjs, fuzz.mjs).
// Ready once /healthz answers; stopped with the process.
import { spawn } from "node:child_process";
import { startMockProvider } from "../tests/e2e/mock-provider.mjs";

/**
 * Starts the mock provider and `wrangler dev` on `port`, persisting local D1 and KV to `state`
 * (already migrated), with `vars` as extra Worker variables. `logs`: false (dropped), true
 * (shown) or "capture" (kept as `lines`, the Worker's JSON log lines, parsed).
 * Returns { base, mock, wrangler, lines, stop(), createOwnerKey(name) }.
 */
export async function startLocalWorker({ port, state, logs = false, adminToken, vars = {} }) {
  const base = `http://127.0.0.1:${port}`;
  const mock = await startMockProvider();
  const wrangler = spawn(
    "node_modules/.bin/wrangler",
    [
      "dev",
      "--port", String(port),
      "--ip", "127.0.0.1",
      "--persist-to", state,
      "--var", "ALLOW_INSECURE_PROVIDER_HOSTS:true",
      ...Object.entries(vars).flatMap(([name, value]) => ["--var", `${name}:${value}`]),
      "--show-interactive-dev-session=false",
      // The Worker's own console lines are shown at "log"; "capture" needs them.
      "--log-level", logs === "capture" ? "log" : "error",
    ],
    { stdio: ["ignore", logs === "capture" ? "pipe" : logs ? "inherit" : "ignore", "inherit"], env: process.env },
  );
  const lines = [];
  if (logs === "capture") {
    let partial = "";
    wrangler.stdout.on("data", (chunk) => {
      const text = partial + chunk.toString();
      const complete = text.split("\n");
      partial = complete.pop();
      for (const line of complete) {
        const start = line.indexOf("{");
        if (start < 0) continue;
        try {
          lines.push(JSON.parse(line.slice(start)));
        } catch {
          // not one of the Worker's JSON lines
        }
      }
    });
  }
  const stop = () => {
    if (wrangler.exitCode === null) wrangler.kill("SIGTERM");
    mock.close();
  };
  process.on("exit", stop);
  await waitForHealth(base, wrangler);

  /** A new workspace's owner key, through the operator API. */
  async function createOwnerKey(name) {
    const created = await fetch(`${base}/v1/workspaces`, {
      method: "POST",
      headers: { authorization: `Bearer ${adminToken}`, "content-type": "application/json" },
      body: JSON.stringify({ name }),
    });
    if (created.status !== 201) throw new Error(`workspace creation answered ${created.status}`);
    return (await created.json()).key.key;
  }

  return { base, mock, wrangler, lines, stop, createOwnerKey };
}

async function waitForHealth(base, child) {
  for (let i = 0; i < 480; i++) {
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
