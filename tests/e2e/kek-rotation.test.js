// Rotating the key-encryption key: a VAULT_KEKS list with a new first entry keeps every stored
// secret readable, and the scheduled handler re-wraps them under the new key. The rotated list
// is given to the built Worker's entrypoint directly (this file's storage is its own).
import { createExecutionContext, createScheduledController, env, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import worker from "../../build/index.js";
import { call, createWorkspace, dbRows } from "./helpers.js";

const OLD = env.VAULT_KEKS;
const NEW = "k2:ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";
const MOCK = env.MOCK_PROVIDER;

/** Sends a request to the Worker running with `vaultKeks` as its VAULT_KEKS. */
async function fetchWith(vaultKeks, method, path, { token, body } = {}) {
  const ctx = createExecutionContext();
  const instance = new worker(ctx, { ...env, VAULT_KEKS: vaultKeks });
  const headers = { "content-type": "application/json", "cf-connecting-ip": "10.9.9.9" };
  if (token) headers.authorization = `Bearer ${token}`;
  const response = await instance.fetch(new Request(`http://keywarden.test${path}`, { method, headers, body: body && JSON.stringify(body) }));
  await waitOnExecutionContext(ctx);
  return { status: response.status, body: await response.json() };
}

async function scheduledWith(vaultKeks) {
  const ctx = createExecutionContext();
  await new worker(ctx, { ...env, VAULT_KEKS: vaultKeks }).scheduled(createScheduledController({ cron: "*/5 * * * *", scheduledTime: Date.now() }));
  await waitOnExecutionContext(ctx);
}

describe("VAULT_KEKS rotation", () => {
  it("keeps every stored secret readable under a new first key, and the cron re-wraps them", async () => {
    const { key: owner, workspace } = await createWorkspace();
    const openaiKey = `sk-kek-${Date.now()}`;
    const claudeKey = `sk-ant-kek-${Date.now()}`;
    for (const [provider, apiKey, host] of [
      ["openai", openaiKey, `${MOCK}/openai/v1`],
      ["anthropic", claudeKey, `${MOCK}/anthropic`],
    ]) {
      const configured = await call("PUT", `/v1/providers/${provider}`, { token: owner, body: { api_key: apiKey, api_host: host } });
      expect(configured.status, configured.text).toBe(200);
    }
    await call("POST", "/v1/webhooks/secret", { token: owner });
    await call("PUT", "/v1/webhooks/endpoint", { token: owner, body: { url: `${MOCK}/receiver/ok/kek` } });

    const rotated = `${NEW},${OLD}`;
    const before = await fetchWith(rotated, "POST", "/v1/resolve", { token: owner, body: { provider: "openai" } });
    expect(before.body).toMatchObject({ mode: "byok", api_key: openaiKey });

    await scheduledWith(rotated);
    const configs = await dbRows("SELECT provider, kek_id FROM provider_configs WHERE workspace_id = ?", workspace.id);
    expect(configs.map((c) => c.kek_id)).toEqual(["k2", "k2"]);
    const secrets = await dbRows("SELECT kek_id FROM webhook_secrets WHERE workspace_id = ?", workspace.id);
    const endpoints = await dbRows("SELECT kek_id FROM notification_endpoints WHERE workspace_id = ?", workspace.id);
    expect([...secrets, ...endpoints].map((s) => s.kek_id)).toEqual(["k2", "k2"]);

    // Only the new key is needed now; the old list alone no longer opens them.
    const onlyNew = await fetchWith(NEW, "POST", "/v1/resolve", { token: owner, body: { provider: "anthropic" } });
    expect(onlyNew.body).toMatchObject({ mode: "byok", api_key: claudeKey });
    const onlyOld = await fetchWith(OLD, "POST", "/v1/resolve", { token: owner, body: { provider: "anthropic" } });
    expect(onlyOld.status).toBe(500);
    expect(onlyOld.body.error.code).toBe("internal");
  });
});
