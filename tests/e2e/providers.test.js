// Bring-your-own provider keys against the mock provider on loopback: configure's three
// checks, every outcome, encryption at rest, routing, resolve and Waypath's routes.
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { admin, call, createKey, createWorkspace, dbRow, dbRows, sleep } from "./helpers.js";

const MOCK = env.MOCK_PROVIDER;
const HOSTS = {
  openai: `${MOCK}/openai/v1`,
  anthropic: `${MOCK}/anthropic/`,
  gemini: `${MOCK}/v1beta/openai/`,
  openrouter: `${MOCK}/openrouter/api/v1`,
  azure: `${MOCK}/azure`,
  bedrock: `${MOCK}/bedrock`,
  deepseek: `${MOCK}/deepseek`,
};

let counter = 0;
/** A key unique to this test, of the mock's `family` (success, invalid, quota, ...). */
const keyFor = (prefix, family = "good") => `${prefix}${family}-${Date.now().toString(36)}${(counter += 1)}`;

async function mockRequests(key) {
  const all = await (await fetch(`${MOCK}/__requests`)).json();
  return all.filter((r) => JSON.stringify(r.headers).includes(key));
}

const put = (owner, provider, body) => call("PUT", `/v1/providers/${provider}`, { token: owner, body: { api_host: HOSTS[provider], ...body } });
const resolve = (owner, body = {}) => call("POST", "/v1/resolve", { token: owner, body });

async function storedRows(workspaceId) {
  return dbRows("SELECT * FROM provider_configs WHERE workspace_id = ?", workspaceId);
}

/** The KV blob holds neither the key nor its base64, and no D1 row holds the key. */
async function expectEncryptedAtRest(workspaceId, provider, key) {
  const row = await dbRow("SELECT * FROM provider_configs WHERE workspace_id = ? AND provider = ?", workspaceId, provider);
  expect(JSON.stringify(row)).not.toContain(key);
  const blob = await env.SECRETS.get(row.blob_name);
  expect(blob).toEqual(expect.any(String));
  expect(blob).not.toContain(key);
  expect(blob).not.toContain(btoa(key).slice(0, 16));
  expect(blob).not.toContain(btoa(key.slice(1)).slice(0, 16));
  expect(blob).not.toContain(btoa(key.slice(2)).slice(0, 16));
}

describe("GET /v1/providers/catalog", () => {
  it("lists the 12 providers with hosts, key hints and fields, without authentication", async () => {
    const response = await call("GET", "/v1/providers/catalog");
    expect(response.status).toBe(200);
    const ids = response.body.providers.map((p) => p.id);
    expect(ids).toEqual(["openai", "anthropic", "gemini", "openrouter", "orcarouter", "qwen", "deepseek", "minimax", "zai", "azure", "bedrock", "openai_compatible"]);
    const byId = Object.fromEntries(response.body.providers.map((p) => [p.id, p]));
    expect(byId.openai.default_host).toBe("https://api.openai.com/v1");
    expect(byId.azure.default_host).toBeNull();
    expect(byId.azure.fields.map((f) => f.name)).toEqual(expect.arrayContaining(["config.deployment", "config.api_version"]));
    expect(byId.bedrock.fields.map((f) => f.name)).toEqual(expect.arrayContaining(["config.region", "config.access_key_id"]));
  });
});

describe("PUT /v1/providers/{id}: a valid key per provider family", () => {
  const cases = [
    ["openai", "sk-proj-", {}, (h) => h.authorization?.startsWith("Bearer sk-proj-")],
    ["openai", "sk-svcacct-", {}, (h) => h.authorization?.startsWith("Bearer sk-svcacct-")],
    ["deepseek", "sk-", { model: "deepseek-chat" }, (h) => h.authorization?.startsWith("Bearer sk-")],
    ["anthropic", "sk-ant-api03-", { model: "claude-sonnet-4-5" }, (h) => h["x-api-key"] && h["anthropic-version"] === "2023-06-01" && !h.authorization],
    ["gemini", "AQ.", { model: "gemini-2.5-flash" }, (h) => h.authorization?.startsWith("Bearer AQ.")],
    ["gemini", "AIza", {}, (h) => h.authorization?.startsWith("Bearer AIza")],
    ["openrouter", "sk-or-v1-", {}, (h) => h.authorization?.startsWith("Bearer sk-or-v1-")],
    ["azure", "", { config: { deployment: "gpt4o-prod" }, model: "gpt-4o" }, (h) => h["api-key"] && !h.authorization],
  ];
  for (const [provider, prefix, extra, authShape] of cases) {
    it(`stores a valid ${provider} key (${prefix || "plain"}) encrypted and resolves it`, async () => {
      const { key: owner, workspace } = await createWorkspace();
      const apiKey = keyFor(prefix);
      const response = await put(owner, provider, { api_key: apiKey, ...extra });
      expect(response.status, response.text).toBe(200);
      expect(response.body).toMatchObject({
        provider,
        status: "valid",
        key_hint: apiKey.length >= 16 ? `...${apiKey.slice(-4)}` : "...",
        version: 1,
        default: true,
        validated_at: expect.any(String),
      });
      expect(JSON.stringify(response.body)).not.toContain(apiKey);
      const seen = await mockRequests(apiKey);
      // DeepSeek is asked its balance after the key, Azure its deployment.
      expect(seen).toHaveLength(["deepseek", "azure"].includes(provider) ? 2 : 1);
      expect(authShape(seen[0].headers), JSON.stringify(seen[0].headers)).toBeTruthy();
      await expectEncryptedAtRest(workspace.id, provider, apiKey);
      const resolved = await resolve(owner);
      expect(resolved.body).toMatchObject({ mode: "byok", provider, api_key: apiKey, api_host: HOSTS[provider].replace(/\/$/, "") });
    });
  }

  it("signs Bedrock's validation with AWS Signature V4", async () => {
    const { key: owner, workspace } = await createWorkspace();
    const secret = keyFor("wJalrXUtnFEMI/K7MDENG/");
    const accessKeyId = `AKIA${Date.now()}GOOD`;
    const response = await put(owner, "bedrock", { api_key: secret, config: { region: "us-east-1", access_key_id: accessKeyId } });
    expect(response.status, response.text).toBe(200);
    const seen = (await (await fetch(`${MOCK}/__requests`)).json()).filter((r) => r.headers.authorization?.includes(accessKeyId));
    expect(seen).toHaveLength(1);
    expect(seen[0].path).toBe("/bedrock/foundation-models");
    expect(seen[0].headers.authorization).toMatch(
      new RegExp(`^AWS4-HMAC-SHA256 Credential=${accessKeyId}/\\d{8}/us-east-1/bedrock/aws4_request, SignedHeaders=host;x-amz-date, Signature=[0-9a-f]{64}$`),
    );
    expect(seen[0].headers["x-amz-date"]).toMatch(/^\d{8}T\d{6}Z$/);
    expect(JSON.stringify(seen[0].headers)).not.toContain(secret);
    await expectEncryptedAtRest(workspace.id, "bedrock", secret);
  });
});

describe("PUT /v1/providers/{id}: refusals", () => {
  const refusals = [
    ["openai", "sk-proj-", "invalid", 422, "invalid_key", { provider_status: 401, message: "Invalid key. Validation failed." }],
    ["anthropic", "sk-ant-", "invalid", 422, "invalid_key", { provider_status: 401 }],
    ["gemini", "AIza", "invalid", 422, "invalid_key", { provider_status: 400 }],
    ["azure", "", "invalid", 422, "invalid_key", { provider_status: 401 }],
    ["openai", "sk-", "quota", 422, "quota_exceeded", { provider_status: 429, message: "You exceeded your current quota" }],
    ["anthropic", "sk-ant-", "quota", 422, "quota_exceeded", { provider_status: 400 }],
    ["openrouter", "sk-or-v1-", "quota", 422, "quota_exceeded", { provider_status: 402 }],
    ["openrouter", "sk-or-v1-", "exhausted", 422, "quota_exceeded", {}],
    ["anthropic", "sk-ant-", "overloaded", 502, "provider_unavailable", { provider_status: 529 }],
    ["openai", "sk-", "servererror", 502, "provider_unavailable", { provider_status: 500 }],
    ["openai", "sk-", "slow", 502, "provider_unavailable", {}],
  ];
  for (const [provider, prefix, family, status, code, fields] of refusals) {
    it(`answers ${status} ${code} for a ${family} ${provider} key and stores nothing`, async () => {
      const { key: owner, workspace } = await createWorkspace();
      const extra = provider === "azure" ? { config: { deployment: "d" } } : {};
      const response = await put(owner, provider, { api_key: keyFor(prefix, family), ...extra });
      expect(response.status, response.text).toBe(status);
      expect(response.body.error).toMatchObject({ code, ...fields });
      expect(await storedRows(workspace.id)).toEqual([]);
    });
  }

  it("answers 503 provider_rate_limited with the provider's Retry-After for a plain rate limit", async () => {
    const { key: owner } = await createWorkspace();
    const response = await put(owner, "openai", { api_key: keyFor("sk-", "ratelimit") });
    expect(response.status).toBe(503);
    expect(response.body.error.code).toBe("provider_rate_limited");
    expect(response.headers.get("retry-after")).toBe("7");
  });

  it("refuses a model the key is not offered with 422 invalid_model naming the field", async () => {
    const { key: owner, workspace } = await createWorkspace();
    const model = await put(owner, "openai", { api_key: keyFor("sk-"), model: "gpt-9" });
    expect(model.status).toBe(422);
    expect(model.body.error).toMatchObject({ code: "invalid_model", field: "model", message: "Invalid model name. Validation failed." });
    const fallback = await put(owner, "anthropic", { api_key: keyFor("sk-ant-"), model: "claude-sonnet-4-5", fallback_model: "claude-2" });
    expect(fallback.body.error).toMatchObject({ code: "invalid_model", field: "fallback_model" });
    expect(await storedRows(workspace.id)).toEqual([]);
  });

  it("refuses an OpenRouter key its /key rejects although its public model list answers", async () => {
    const { key: owner } = await createWorkspace();
    const apiKey = keyFor("sk-or-v1-", "invalid");
    const response = await put(owner, "openrouter", { api_key: apiKey, model: "openai/gpt-4o" });
    expect(response.status).toBe(422);
    expect(response.body.error.code).toBe("invalid_key");
    expect((await mockRequests(apiKey)).map((r) => r.path)).toEqual(["/openrouter/api/v1/key"]);
  });

  it("detects another provider's key without calling anyone", async () => {
    const { key: owner } = await createWorkspace();
    for (const [provider, apiKey, detected] of [
      ["openai", keyFor("sk-ant-api03-"), "anthropic"],
      ["anthropic", keyFor("sk-or-v1-"), "openrouter"],
      ["deepseek", keyFor("sk-proj-"), "openai"],
      ["openai", keyFor("AIza"), "gemini"],
    ]) {
      const response = await put(owner, provider, { api_key: apiKey });
      expect(response.status, `${provider} ${apiKey}`).toBe(422);
      expect(response.body.error).toMatchObject({ code: "wrong_provider", detected });
      expect(await mockRequests(apiKey)).toEqual([]);
    }
  });

  it("refuses malformed keys, hosts and settings before any call", async () => {
    const { key: owner } = await createWorkspace();
    const cases = [
      ["openai", { api_key: "has space" }, 400, "invalid_request", "api_key"],
      ["openai", { api_key: "x".repeat(513) }, 400, "invalid_request", "api_key"],
      ["openai", { api_key: "sk-x", api_host: "http://10.0.0.8/v1" }, 400, "invalid_host", "api_host"],
      ["openai", { api_key: "sk-x", api_host: "http://169.254.169.254/latest" }, 400, "invalid_host", "api_host"],
      ["openai", { api_key: "sk-x", api_host: "https://user:pw@example.com" }, 400, "invalid_host", "api_host"],
      ["openai", { api_key: "sk-x", api_host: "ftp://example.com" }, 400, "invalid_host", "api_host"],
      ["azure", { api_key: "abc", api_host: undefined }, 400, "invalid_request", "api_host"],
      ["azure", { api_key: "abc" }, 400, "invalid_request", "config.deployment"],
      ["bedrock", { api_key: "abc", config: { region: "us-east-1" } }, 400, "invalid_request", "config.access_key_id"],
      ["openai", { api_key: "sk-x", config: { temperature: "1" } }, 400, "invalid_request", "config.temperature"],
      ["openai", { api_key: "sk-x", colour: "red" }, 400, "invalid_request", "colour"],
    ];
    for (const [provider, body, status, code, field] of cases) {
      const response = await call("PUT", `/v1/providers/${provider}`, { token: owner, body: { api_host: HOSTS[provider], ...body } });
      expect(response.status, JSON.stringify(body).slice(0, 80)).toBe(status);
      expect(response.body.error, JSON.stringify(body).slice(0, 80)).toMatchObject({ code, field });
    }
    expect((await call("PUT", "/v1/providers/cohere", { token: owner, body: { api_key: "x" } })).status).toBe(404);
  });

  it("needs providers:write and a writable workspace", async () => {
    const { key: owner, workspace } = await createWorkspace();
    const reader = await createKey(owner, { capabilities: ["providers:read"] });
    const denied = await put(reader.key, "openai", { api_key: keyFor("sk-") });
    expect(denied.body.error).toMatchObject({ code: "missing_capability", required: "providers:write" });
    await admin("PATCH", `/v1/workspaces/${workspace.id}`, { body: { read_only: true } });
    const readOnly = await put(owner, "openai", { api_key: keyFor("sk-") });
    expect(readOnly.status).toBe(403);
    expect(readOnly.body.error.code).toBe("workspace_read_only");
  });
});

describe("replacing, reading and removing", () => {
  it("replaces a key atomically: every resolve during the switch sees the old key or the new one", async () => {
    const { key: owner } = await createWorkspace();
    const oldKey = keyFor("sk-");
    // The mock answers a "laggy" key 400 ms late: the replacement stays open while resolves run.
    const newKey = keyFor("sk-", "laggy");
    await put(owner, "openai", { api_key: oldKey });
    const replacing = put(owner, "openai", { api_key: newKey });
    const answers = [];
    for (let i = 0; i < 20; i++) {
      answers.push(resolve(owner));
      await sleep(40);
    }
    await Promise.all(answers).then((all) => answers.splice(0, answers.length, ...all));
    const replaced = await replacing;
    expect(replaced.body.version).toBe(2);
    for (const answer of answers) {
      expect(answer.status).toBe(200);
      expect([oldKey, newKey]).toContain(answer.body.api_key);
    }
    const seen = new Set(answers.map((a) => a.body.api_key));
    expect(seen.has(oldKey), "some resolves ran before the switch").toBe(true);
    expect((await resolve(owner)).body.api_key).toBe(newKey);
  });

  it("lists, reads and removes configs, and a removal leaves no default", async () => {
    const { key: owner, workspace } = await createWorkspace();
    await put(owner, "openai", { api_key: keyFor("sk-") });
    await put(owner, "anthropic", { api_key: keyFor("sk-ant-"), default: true });
    const listed = await call("GET", "/v1/providers", { token: owner });
    expect(listed.body.items.map((p) => [p.provider, p.default])).toEqual([["anthropic", true], ["openai", false]]);
    const one = await call("GET", "/v1/providers/claude", { token: owner });
    expect(one.body).toMatchObject({ provider: "anthropic", status: "valid", default: true });
    const removed = await call("DELETE", "/v1/providers/anthropic", { token: owner });
    expect(removed.body).toEqual({ status: "removed", provider: "anthropic" });
    expect((await call("GET", "/v1/providers/anthropic", { token: owner })).body.error.code).toBe("not_configured");
    expect((await call("DELETE", "/v1/providers/anthropic", { token: owner })).status).toBe(404);
    const removals = await dbRows("SELECT action FROM audit_events WHERE workspace_id = ? AND action = 'provider.removed'", workspace.id);
    expect(removals, "audited once, by the removal that happened").toHaveLength(1);
    expect((await resolve(owner)).body).toEqual({ mode: "metered", reason: "no_byok_configured" });
  });
});

describe("POST /v1/providers/{id}/validate", () => {
  it("records a key that went bad and resolve then falls back to metered byok_invalid", async () => {
    const { key: owner, workspace } = await createWorkspace();
    const apiKey = keyFor("sk-");
    await put(owner, "openai", { api_key: apiKey });
    await fetch(`${MOCK}/__keys/${encodeURIComponent(apiKey)}`, {
      method: "PUT",
      body: JSON.stringify({ status: 401, body: { error: { code: "invalid_api_key" } } }),
    });
    const validated = await call("POST", "/v1/providers/openai/validate", { token: owner });
    expect(validated.status).toBe(200);
    expect(validated.body).toMatchObject({ status: "invalid", error: { code: "invalid_key", provider_status: 401 } });
    expect((await dbRow("SELECT status FROM provider_configs WHERE workspace_id = ?", workspace.id)).status).toBe("invalid");
    expect((await resolve(owner)).body).toEqual({ mode: "metered", reason: "byok_invalid" });

    await fetch(`${MOCK}/__keys/${encodeURIComponent(apiKey)}`, { method: "DELETE" });
    const healed = await call("POST", "/v1/providers/openai/validate", { token: owner });
    expect(healed.body.status).toBe("valid");
    expect(healed.body.error).toBeUndefined();
    expect((await resolve(owner)).body.mode).toBe("byok");
  });

  it("works in a read-only workspace", async () => {
    const { key: owner, workspace } = await createWorkspace();
    await put(owner, "openai", { api_key: keyFor("sk-") });
    await admin("PATCH", `/v1/workspaces/${workspace.id}`, { body: { read_only: true } });
    expect((await call("POST", "/v1/providers/openai/validate", { token: owner })).body.status).toBe("valid");
    expect((await resolve(owner)).body.mode).toBe("byok");
  });
});

describe("agent routing and resolve", () => {
  it("resolves routed-metered, routed-byok, default and requested providers with their reasons", async () => {
    const { key: owner } = await createWorkspace();
    const openaiKey = keyFor("sk-");
    const claudeKey = keyFor("sk-ant-");
    await put(owner, "openai", { api_key: openaiKey, model: "gpt-4o" });
    await put(owner, "anthropic", { api_key: claudeKey, model: "claude-sonnet-4-5" });

    const metered = await call("PUT", "/v1/agents/buddy-1/routing", { token: owner, body: { mode: "metered" } });
    expect(metered.body).toMatchObject({ agent_id: "buddy-1", mode: "metered", provider: null });
    const byok = await call("PUT", "/v1/agents/buddy-2/routing", { token: owner, body: { mode: "byok", provider: "claude", model: "claude-opus-4-1" } });
    expect(byok.body).toMatchObject({ agent_id: "buddy-2", mode: "byok", provider: "anthropic", model: "claude-opus-4-1" });
    expect((await call("GET", "/v1/agents/buddy-2/routing", { token: owner })).body).toEqual(byok.body);

    expect((await resolve(owner, { agent_id: "buddy-1" })).body).toEqual({ mode: "metered", reason: "agent_routed_metered" });
    const routed = await resolve(owner, { agent_id: "buddy-2" });
    expect(routed.headers.get("cache-control")).toBe("no-store");
    expect(routed.body).toMatchObject({ mode: "byok", provider: "anthropic", api_key: claudeKey, model: "claude-opus-4-1", fallback_model: null });
    expect((await resolve(owner, { agent_id: "unrouted" })).body).toMatchObject({ provider: "openai", api_key: openaiKey, model: "gpt-4o" });
    expect((await resolve(owner, { agent_id: "buddy-1", provider: "anthropic" })).body).toMatchObject({ provider: "anthropic" });
    expect((await resolve(owner, { provider: "gemini" })).body).toEqual({ mode: "metered", reason: "no_byok_configured" });

    await call("DELETE", "/v1/providers/anthropic", { token: owner });
    expect((await resolve(owner, { agent_id: "buddy-2" })).body).toEqual({ mode: "metered", reason: "provider_removed" });
  });

  it("refuses routing to a provider that is not configured, and removes routes", async () => {
    const { key: owner } = await createWorkspace();
    const refused = await call("PUT", "/v1/agents/a1/routing", { token: owner, body: { mode: "byok", provider: "openai" } });
    expect(refused.status).toBe(409);
    expect(refused.body.error.code).toBe("provider_not_configured");
    const badMode = await call("PUT", "/v1/agents/a1/routing", { token: owner, body: { mode: "cheap" } });
    expect(badMode.body.error).toMatchObject({ code: "invalid_request", field: "mode" });
    expect((await call("GET", "/v1/agents/a1/routing", { token: owner })).status).toBe(404);
    await call("PUT", "/v1/agents/a1/routing", { token: owner, body: { mode: "metered" } });
    expect((await call("DELETE", "/v1/agents/a1/routing", { token: owner })).body).toEqual({ status: "removed", agent_id: "a1" });
    expect((await call("GET", "/v1/agents/a1/routing", { token: owner })).status).toBe(404);
  });

  it("lists routed agents most recently changed first, each once, across pages", async () => {
    const { key: owner } = await createWorkspace();
    await put(owner, "openai", { api_key: keyFor("sk-") });
    const agents = ["support.bot:eu", "support.bot:us", "triage-1", "old_bot"];
    for (const agent of agents) {
      const routed = await call("PUT", `/v1/agents/${encodeURIComponent(agent)}/routing`, { token: owner, body: { mode: "byok", provider: "openai", model: "gpt-4o" } });
      expect(routed.status, routed.text).toBe(200);
      await sleep(3);
    }
    await call("PUT", "/v1/agents/support.bot%3Aeu/routing", { token: owner, body: { mode: "metered" } });
    await call("DELETE", "/v1/agents/old_bot/routing", { token: owner });

    const seen = [];
    let cursor = "";
    for (let pages = 0; pages < 5; pages += 1) {
      const page = await call("GET", `/v1/agents?limit=2&cursor=${encodeURIComponent(cursor)}`, { token: owner });
      expect(page.status, page.text).toBe(200);
      seen.push(...page.body.items);
      if (page.body.next_cursor === null) break;
      cursor = page.body.next_cursor;
    }
    expect(seen.map((r) => r.agent_id)).toEqual(["support.bot:eu", "triage-1", "support.bot:us"]);
    expect(seen[0]).toMatchObject({ mode: "metered", provider: null, model: null });
    expect(seen[1]).toEqual((await call("GET", "/v1/agents/triage-1/routing", { token: owner })).body);
  });

  it("lists only the calling workspace's agents, for providers:read", async () => {
    const { key: owner } = await createWorkspace();
    const { key: other } = await createWorkspace();
    await call("PUT", "/v1/agents/mine/routing", { token: owner, body: { mode: "metered" } });
    expect((await call("GET", "/v1/agents", { token: other })).body).toEqual({ items: [], next_cursor: null });

    const keysOnly = await createKey(owner, { capabilities: ["keys:read"] });
    const refused = await call("GET", "/v1/agents", { token: keysOnly.key });
    expect(refused.status).toBe(403);
    expect(refused.body.error).toMatchObject({ code: "missing_capability", required: "providers:read" });
    const reader = await createKey(owner, { capabilities: ["providers:read"] });
    expect((await call("GET", "/v1/agents", { token: reader.key })).body.items.map((r) => r.agent_id)).toEqual(["mine"]);
  });

  it("refuses a cursor of another shape", async () => {
    const { key: owner } = await createWorkspace();
    for (const cursor of ["abc", "1.a b", "1.a/b"]) {
      const refused = await call("GET", `/v1/agents?cursor=${encodeURIComponent(cursor)}`, { token: owner });
      expect(refused.status, cursor).toBe(400);
      expect(refused.body.error).toMatchObject({ code: "invalid_request", field: "cursor" });
    }
  });

  it("audits every resolve without the key", async () => {
    const { key: owner, workspace } = await createWorkspace();
    const apiKey = keyFor("sk-");
    await put(owner, "openai", { api_key: apiKey });
    await resolve(owner, { agent_id: "auditor" });
    let events = [];
    for (let i = 0; i < 20 && events.length === 0; i++) {
      events = await dbRows("SELECT action, target, detail FROM audit_events WHERE workspace_id = ? AND action = 'secret.resolved'", workspace.id);
      if (events.length === 0) await sleep(50);
    }
    expect(events).toHaveLength(1);
    expect(JSON.parse(events[0].detail)).toMatchObject({ mode: "byok", provider: "openai", agent_id: "auditor" });
    const trail = JSON.stringify(await dbRows("SELECT * FROM audit_events WHERE workspace_id = ?", workspace.id));
    expect(trail).not.toContain(apiKey);
    expect(trail).toContain("provider.configured");
  });

  it("needs secrets:resolve", async () => {
    const { key: owner } = await createWorkspace();
    const reader = await createKey(owner, { capabilities: ["providers:read"] });
    const response = await resolve(reader.key);
    expect(response.body.error).toMatchObject({ code: "missing_capability", required: "secrets:resolve" });
  });
});

describe("tampering", () => {
  it("a blob copied to another workspace or provider fails to decrypt: an audited 500, never a fallback", async () => {
    const a = await createWorkspace();
    const b = await createWorkspace();
    await put(a.key, "openai", { api_key: keyFor("sk-") });
    await put(b.key, "openai", { api_key: keyFor("sk-") });
    await put(b.key, "anthropic", { api_key: keyFor("sk-ant-") });
    const source = await dbRow("SELECT blob_name FROM provider_configs WHERE workspace_id = ? AND provider = 'openai'", a.workspace.id);
    const stolen = await env.SECRETS.get(source.blob_name);
    for (const provider of ["openai", "anthropic"]) {
      const target = await dbRow("SELECT blob_name FROM provider_configs WHERE workspace_id = ? AND provider = ?", b.workspace.id, provider);
      await env.SECRETS.put(target.blob_name, stolen);
      const response = await resolve(b.key, { provider });
      expect(response.status, provider).toBe(500);
      expect(response.body.error.code).toBe("internal");
    }
    let failures = [];
    for (let i = 0; i < 20 && failures.length < 2; i++) {
      failures = await dbRows("SELECT action FROM audit_events WHERE workspace_id = ? AND action = 'secret.decrypt_failed'", b.workspace.id);
      if (failures.length < 2) await sleep(50);
    }
    expect(failures).toHaveLength(2);
  });
});

describe("Waypath compatibility", () => {
  it("configures claude and openai with {apiKey} against the configured host", async () => {
    const { key: owner } = await createWorkspace();
    await put(owner, "anthropic", { api_key: keyFor("sk-ant-") });
    await put(owner, "openai", { api_key: keyFor("sk-") });
    const claudeKey = keyFor("sk-ant-api03-");
    const configured = await call("POST", "/api/integrations/claude/configure", { token: owner, body: { apiKey: claudeKey } });
    expect(configured.status, configured.text).toBe(200);
    expect(configured.body).toEqual({ status: "configured", provider: "claude" });
    expect(await mockRequests(claudeKey)).toHaveLength(1);
    expect((await resolve(owner, { provider: "anthropic" })).body.api_key).toBe(claudeKey);
    const openai = await call("POST", "/api/integrations/openai/configure", { token: owner, body: { apiKey: keyFor("sk-proj-") } });
    expect(openai.body).toEqual({ status: "configured", provider: "openai" });
  });

  it("answers 401 Invalid <provider> key for a wrong prefix or a key the provider rejects", async () => {
    const { key: owner } = await createWorkspace();
    await put(owner, "anthropic", { api_key: keyFor("sk-ant-") });
    const prefix = await call("POST", "/api/integrations/claude/configure", { token: owner, body: { apiKey: "sk-proj-abc" } });
    expect(prefix.status).toBe(401);
    expect(prefix.body.error).toMatch(/^Invalid claude key: /);
    const rejected = await call("POST", "/api/integrations/claude/configure", { token: owner, body: { apiKey: keyFor("sk-ant-", "invalid") } });
    expect(rejected.status).toBe(401);
    expect(rejected.body).toEqual({ error: "Invalid claude key: Invalid key. Validation failed." });
    const openai = await call("POST", "/api/integrations/openai/configure", { token: owner, body: { apiKey: "pk-123" } });
    expect(openai.body.error).toMatch(/^Invalid openai key: /);
  });

  it("removes an integration, routed agents fall back to metered, and read-only answers 403", async () => {
    const { key: owner, workspace } = await createWorkspace();
    await put(owner, "anthropic", { api_key: keyFor("sk-ant-") });
    await call("PUT", "/v1/agents/buddy/routing", { token: owner, body: { mode: "byok", provider: "anthropic" } });
    const removed = await call("DELETE", "/api/integrations/claude", { token: owner });
    expect(removed.body).toEqual({ status: "removed", provider: "claude" });
    expect((await resolve(owner, { agent_id: "buddy" })).body).toEqual({ mode: "metered", reason: "provider_removed" });
    await admin("PATCH", `/v1/workspaces/${workspace.id}`, { body: { read_only: true } });
    const readOnly = await call("POST", "/api/integrations/openai/configure", { token: owner, body: { apiKey: keyFor("sk-") } });
    expect(readOnly.status).toBe(403);
  });
});
