// Issue 15 against the mock provider: a restricted key told from a bad one, funds, the models a
// key is offered, Azure's deployment check, and metered fallback only by consent.
import { createExecutionContext, createScheduledController, env, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import worker from "../../build/index.js";
import { admin, call, createKey, createWorkspace, dbRow, dbRows, sleep, eventually } from "./helpers.js";

const MOCK = env.MOCK_PROVIDER;
const HOSTS = {
  openai: `${MOCK}/openai/v1`,
  anthropic: `${MOCK}/anthropic`,
  gemini: `${MOCK}/v1beta/openai`,
  openrouter: `${MOCK}/openrouter/api/v1`,
  azure: `${MOCK}/azure`,
  bedrock: `${MOCK}/bedrock`,
  deepseek: `${MOCK}/deepseek`,
};

let counter = 0;
/** A key unique to this test, of the mock's `family` (restricted, region, invalid, ...). */
const keyFor = (prefix, family = "good") => `${prefix}${family}-${Date.now().toString(36)}${(counter += 1)}`;

const put = (owner, provider, body) => call("PUT", `/v1/providers/${provider}`, { token: owner, body: { api_host: HOSTS[provider], ...body } });
const resolve = (owner, body = {}) => call("POST", "/v1/resolve", { token: owner, body });
const validate = (owner, provider) => call("POST", `/v1/providers/${provider}/validate`, { token: owner });
const storedRows = (workspaceId) => dbRows("SELECT * FROM provider_configs WHERE workspace_id = ?", workspaceId);
const stored = (workspaceId, provider) => dbRow("SELECT * FROM provider_configs WHERE workspace_id = ? AND provider = ?", workspaceId, provider);

/** Answers every later request carrying `apiKey` with `status` and `body`. */
async function overrideKey(apiKey, status, body) {
  await fetch(`${MOCK}/__keys/${encodeURIComponent(apiKey)}`, { method: "PUT", body: JSON.stringify({ status, body }) });
}

async function runScheduled() {
  const ctx = createExecutionContext();
  await new worker(ctx, env).scheduled(createScheduledController({ cron: "*/5 * * * *", scheduledTime: Date.now() }));
  await waitOnExecutionContext(ctx);
}

/** Makes the workspace's configs due for the cron's re-validation. */
const makeDue = (workspaceId) => env.DB.prepare("UPDATE provider_configs SET validated_at = 1000, checked_at = NULL WHERE workspace_id = ?").bind(workspaceId).run();

const bedrockConfig = (accessKeyId) => ({ config: { region: "us-east-1", access_key_id: accessKeyId } });

describe("PUT /v1/providers/{id}: a restricted key is told from a bad one", () => {
  const restricted = [
    ["openai", "sk-proj-", "restricted", {}, 401, "insufficient_permissions"],
    ["gemini", "AIza", "restricted", {}, 403, "SERVICE_DISABLED"],
    ["anthropic", "sk-ant-api03-", "restricted", {}, 403, "permission_error"],
    ["azure", "", "restricted", { config: { deployment: "gpt4o-prod" } }, 401, "PermissionDenied"],
  ];
  for (const [provider, prefix, family, extra, providerStatus, reason] of restricted) {
    it(`answers 422 key_restricted with ${reason} for ${provider} and stores nothing`, async () => {
      const { key: owner, workspace } = await createWorkspace();
      const response = await put(owner, provider, { api_key: keyFor(prefix, family), ...extra });
      expect(response.status, response.text).toBe(422);
      expect(response.body.error).toMatchObject({
        code: "key_restricted",
        message: "Key is valid but not allowed to do this. Check its permissions.",
        provider_status: providerStatus,
        provider_reason: reason,
      });
      expect(await storedRows(workspace.id)).toEqual([]);
    });
  }

  it("answers key_restricted with AccessDeniedException for a Bedrock user without ListFoundationModels", async () => {
    const { key: owner, workspace } = await createWorkspace();
    const response = await put(owner, "bedrock", { api_key: keyFor("wJalrXUtnFEMI/"), ...bedrockConfig(`AKIA${Date.now()}RESTRICTED`) });
    expect(response.status, response.text).toBe(422);
    expect(response.body.error).toMatchObject({ code: "key_restricted", provider_status: 403, provider_reason: "AccessDeniedException" });
    expect(await storedRows(workspace.id)).toEqual([]);
  });

  const regions = [
    ["openai", "sk-", 403, "unsupported_country_region_territory"],
    ["gemini", "AIza", 400, "FAILED_PRECONDITION"],
    ["anthropic", "sk-ant-", 403, "forbidden"],
  ];
  for (const [provider, prefix, providerStatus, reason] of regions) {
    it(`answers 422 region_unsupported for a ${provider} region refusal`, async () => {
      const { key: owner, workspace } = await createWorkspace();
      const response = await put(owner, provider, { api_key: keyFor(prefix, "region") });
      expect(response.status, response.text).toBe(422);
      expect(response.body.error).toMatchObject({ code: "region_unsupported", provider_status: providerStatus, provider_reason: reason });
      expect(await storedRows(workspace.id)).toEqual([]);
    });
  }

  it("keeps invalid_key for every answer that says the credential itself is wrong", async () => {
    const { key: owner, workspace } = await createWorkspace();
    const cases = [
      ["openai", { api_key: keyFor("sk-", "invalid") }, 401],
      ["gemini", { api_key: keyFor("AIza", "invalid") }, 400],
      ["anthropic", { api_key: keyFor("sk-ant-", "invalid") }, 401],
      ["bedrock", { api_key: keyFor("secret"), ...bedrockConfig(`AKIA${Date.now()}INVALID`) }, 403],
      ["bedrock", { api_key: keyFor("secret"), ...bedrockConfig(`AKIA${Date.now()}BADSIGNATURE`) }, 403],
    ];
    for (const [provider, body, providerStatus] of cases) {
      const response = await put(owner, provider, { ...body, allow_unverified: true });
      expect(response.status, `${provider} ${response.text}`).toBe(422);
      expect(response.body.error, provider).toMatchObject({ code: "invalid_key", provider_status: providerStatus });
    }
    expect(await storedRows(workspace.id), "allow_unverified stores no bad key").toEqual([]);
  });
});

describe("allow_unverified", () => {
  it("stores a restricted key as unverified with the provider's reason, and it resolves like a valid key", async () => {
    const { key: owner, workspace } = await createWorkspace();
    const apiKey = keyFor("AIza", "restricted");
    const response = await put(owner, "gemini", { api_key: apiKey, model: "gemini-2.5-flash", allow_unverified: true });
    expect(response.status, response.text).toBe(200);
    expect(response.body).toMatchObject({ provider: "gemini", status: "unverified", provider_reason: "SERVICE_DISABLED", funds: null, version: 1 });
    expect(await stored(workspace.id, "gemini")).toMatchObject({ status: "unverified", provider_reason: "SERVICE_DISABLED" });
    const resolved = await resolve(owner);
    expect(resolved.body).toMatchObject({ mode: "byok", provider: "gemini", api_key: apiKey });
    const audit = await dbRow("SELECT detail FROM audit_events WHERE workspace_id = ? AND action = 'provider.configured'", workspace.id);
    expect(JSON.parse(audit.detail)).toMatchObject({ status: "unverified" });
  });

  it("stores a region refusal as unverified too, and a valid key is still valid", async () => {
    const { key: owner } = await createWorkspace();
    const region = await put(owner, "openai", { api_key: keyFor("sk-", "region"), allow_unverified: true });
    expect(region.body).toMatchObject({ status: "unverified", provider_reason: "unsupported_country_region_territory" });
    const valid = await put(owner, "anthropic", { api_key: keyFor("sk-ant-"), allow_unverified: true });
    expect(valid.body).toMatchObject({ status: "valid", provider_reason: null });
  });

  it("refuses a non-boolean allow_unverified before any call", async () => {
    const { key: owner } = await createWorkspace();
    const response = await put(owner, "openai", { api_key: keyFor("sk-"), allow_unverified: "yes" });
    expect(response.status).toBe(400);
    expect(response.body.error).toMatchObject({ code: "invalid_request", field: "allow_unverified" });
  });

  it("is re-tried by the cron, which makes it valid once the provider accepts it", async () => {
    const { key: owner, workspace } = await createWorkspace();
    const apiKey = keyFor("sk-", "good");
    await overrideKey(apiKey, 401, { error: { message: "You have insufficient permissions for this operation. Missing scopes: api.model.read.", type: "invalid_request_error", code: null } });
    const response = await put(owner, "openai", { api_key: apiKey, allow_unverified: true });
    expect(response.body.status).toBe("unverified");
    await fetch(`${MOCK}/__keys/${encodeURIComponent(apiKey)}`, { method: "DELETE" });
    await makeDue(workspace.id);
    await runScheduled();
    expect(await stored(workspace.id, "openai")).toMatchObject({ status: "valid", provider_reason: null });
  });
});

describe("funds", () => {
  it("refuses an OpenRouter key whose credit limit is spent and a DeepSeek account that is not available", async () => {
    const { key: owner, workspace } = await createWorkspace();
    const spent = await put(owner, "openrouter", { api_key: keyFor("sk-or-v1-", "exhausted") });
    expect(spent.status).toBe(422);
    expect(spent.body.error).toMatchObject({ code: "quota_exceeded", provider_status: 200 });
    const broke = await put(owner, "deepseek", { api_key: keyFor("sk-", "broke") });
    expect(broke.status, broke.text).toBe(422);
    expect(broke.body.error).toMatchObject({ code: "quota_exceeded", message: "You exceeded your current quota", provider_status: 200 });
    expect(await storedRows(workspace.id)).toEqual([]);
  });

  it("shows what an OpenRouter key with a limit has left, in credits", async () => {
    const { key: owner, workspace } = await createWorkspace();
    const response = await put(owner, "openrouter", { api_key: keyFor("sk-or-v1-", "limited") });
    expect(response.status, response.text).toBe(200);
    expect(response.body.funds).toEqual({ remaining: 7.5, currency: null, checked_at: response.body.validated_at });
    expect(JSON.parse((await stored(workspace.id, "openrouter")).funds)).toMatchObject({ remaining: 7.5, currency: null });
    const unlimited = await put(owner, "openrouter", { api_key: keyFor("sk-or-v1-") });
    expect(unlimited.body.funds, "no limit: nothing to tell").toBeNull();
  });

  it("shows a DeepSeek balance in its currency", async () => {
    const { key: owner } = await createWorkspace();
    const response = await put(owner, "deepseek", { api_key: keyFor("sk-") });
    expect(response.status, response.text).toBe(200);
    expect(response.body.funds).toEqual({ remaining: 110, currency: "CNY", checked_at: expect.any(String) });
    expect((await call("GET", "/v1/providers/deepseek", { token: owner })).body.funds).toEqual(response.body.funds);
  });

  it("becomes quota_exceeded when the cron finds the key run dry, invalidated and notified", async () => {
    const { key: owner, workspace } = await createWorkspace();
    await call("PUT", "/v1/webhooks/endpoint", { token: owner, body: { url: `${MOCK}/receiver/ok/funds-${workspace.id}` } });
    const apiKey = keyFor("sk-or-v1-", "limited");
    await put(owner, "openrouter", { api_key: apiKey });
    await overrideKey(apiKey, 200, { data: { label: "x", limit: 10, usage: 10, limit_remaining: 0 } });
    await makeDue(workspace.id);
    await runScheduled();
    const row = await stored(workspace.id, "openrouter");
    expect(row.status).toBe("quota_exceeded");
    expect(JSON.parse(row.funds)).toMatchObject({ remaining: 0, currency: null });
    const events = await dbRows("SELECT event_type, payload FROM outbox WHERE workspace_id = ?", workspace.id);
    expect(events.map((e) => e.event_type)).toContain("provider_key.invalidated");
    expect(await dbRows("SELECT action FROM audit_events WHERE workspace_id = ? AND action = 'provider.invalidated'", workspace.id)).toHaveLength(1);
    expect((await resolve(owner)).body).toEqual({ mode: "metered", reason: "byok_invalid" });
  });

  it("is refreshed by validate, with the error when the key runs dry", async () => {
    const { key: owner } = await createWorkspace();
    const apiKey = keyFor("sk-or-v1-", "limited");
    await put(owner, "openrouter", { api_key: apiKey });
    await overrideKey(apiKey, 200, { data: { label: "x", limit: 10, usage: 9, limit_remaining: 1 } });
    const lower = await validate(owner, "openrouter");
    expect(lower.body).toMatchObject({ status: "valid", funds: { remaining: 1, currency: null } });
    await overrideKey(apiKey, 200, { data: { label: "x", limit: 10, usage: 10, limit_remaining: 0 } });
    const dry = await validate(owner, "openrouter");
    expect(dry.body).toMatchObject({ status: "quota_exceeded", funds: { remaining: 0 }, error: { code: "quota_exceeded", provider_status: 200 } });
  });
});

describe("re-validation of restricted keys", () => {
  it("records a key that turned restricted as unverified, still handed out and not invalidated", async () => {
    const { key: owner, workspace } = await createWorkspace();
    const apiKey = keyFor("sk-ant-");
    await put(owner, "anthropic", { api_key: apiKey });
    await overrideKey(apiKey, 403, { type: "error", error: { type: "permission_error", message: "Permission denied" } });
    const validated = await validate(owner, "anthropic");
    expect(validated.status).toBe(200);
    expect(validated.body).toMatchObject({
      status: "unverified",
      provider_reason: "permission_error",
      error: { code: "key_restricted", provider_status: 403, provider_reason: "permission_error" },
    });
    expect(await dbRows("SELECT action FROM audit_events WHERE workspace_id = ? AND action = 'provider.invalidated'", workspace.id)).toEqual([]);
    expect((await resolve(owner)).body).toMatchObject({ mode: "byok", api_key: apiKey });
  });

  it("marks an unverified key invalid when the cron finds the credential wrong", async () => {
    const { key: owner, workspace } = await createWorkspace();
    const apiKey = keyFor("sk-", "good");
    await overrideKey(apiKey, 403, { error: { code: "unsupported_country_region_territory", message: "Country, region, or territory not supported", type: "request_forbidden" } });
    expect((await put(owner, "openai", { api_key: apiKey, allow_unverified: true })).body.status).toBe("unverified");
    await overrideKey(apiKey, 401, { error: { code: "invalid_api_key", message: "Incorrect API key provided" } });
    await makeDue(workspace.id);
    await runScheduled();
    expect(await stored(workspace.id, "openai")).toMatchObject({ status: "invalid", provider_reason: null });
    expect(await dbRows("SELECT action FROM audit_events WHERE workspace_id = ? AND action = 'provider.invalidated'", workspace.id)).toHaveLength(1);
  });
});

describe("GET /v1/providers/{id}/models", () => {
  it("lists the models the key was offered at its last validation without asking the provider again", async () => {
    const { key: owner } = await createWorkspace();
    const apiKey = keyFor("sk-");
    await put(owner, "openai", { api_key: apiKey });
    const before = (await (await fetch(`${MOCK}/__requests`)).json()).length;
    const listed = await call("GET", "/v1/providers/openai/models", { token: owner });
    expect(listed.status).toBe(200);
    expect(listed.body).toEqual({
      provider: "openai",
      models: ["gpt-4o", "gpt-4o-mini", "gpt-4o-2024-08-06", "o3-mini", "deepseek-chat"],
      truncated: false,
      listed_at: expect.any(String),
    });
    expect((await (await fetch(`${MOCK}/__requests`)).json()).length, "no provider call").toBe(before);
  });

  it("lists Gemini's models without their models/ prefix and OpenRouter's public list", async () => {
    const { key: owner } = await createWorkspace();
    await put(owner, "gemini", { api_key: keyFor("AIza") });
    await put(owner, "openrouter", { api_key: keyFor("sk-or-v1-") });
    expect((await call("GET", "/v1/providers/gemini/models", { token: owner })).body.models).toEqual(["gemini-2.5-flash", "gemini-2.5-pro", "gemini-2.0-flash"]);
    expect((await call("GET", "/v1/providers/openrouter/models", { token: owner })).body.models).toEqual(["anthropic/claude-sonnet-4.5", "openai/gpt-4o"]);
  });

  it("follows the key: a re-validation replaces the list, an unverified replacement has none", async () => {
    const { key: owner } = await createWorkspace();
    const apiKey = keyFor("sk-");
    await put(owner, "openai", { api_key: apiKey });
    await overrideKey(apiKey, 200, { object: "list", data: [{ id: "gpt-5", object: "model" }] });
    await validate(owner, "openai");
    expect((await call("GET", "/v1/providers/openai/models", { token: owner })).body.models).toEqual(["gpt-5"]);
    await put(owner, "openai", { api_key: keyFor("sk-", "restricted"), allow_unverified: true });
    expect((await call("GET", "/v1/providers/openai/models", { token: owner })).body).toEqual({ provider: "openai", models: [], truncated: false, listed_at: null });
  });

  it("answers 404 not_configured, needs providers:read and knows claude", async () => {
    const { key: owner } = await createWorkspace();
    const missing = await call("GET", "/v1/providers/openai/models", { token: owner });
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe("not_configured");
    expect((await call("GET", "/v1/providers/cohere/models", { token: owner })).body.error.code).toBe("not_found");
    await put(owner, "anthropic", { api_key: keyFor("sk-ant-") });
    expect((await call("GET", "/v1/providers/claude/models", { token: owner })).body.models).toEqual(["claude-sonnet-4-5-20250929", "claude-opus-4-1-20250805", "claude-3-5-haiku-20241022"]);
    const { key: other } = await createWorkspace();
    expect((await call("GET", "/v1/providers/anthropic/models", { token: other })).status, "another workspace's config is not there").toBe(404);
    const keysOnly = await createKey(owner, { capabilities: ["keys:read"] });
    const refused = await call("GET", "/v1/providers/anthropic/models", { token: keysOnly.key });
    expect(refused.body.error).toMatchObject({ code: "missing_capability", required: "providers:read" });
  });
});

describe("Azure deployment", () => {
  it("refuses a deployment that does not exist with invalid_model on config.deployment and stores nothing", async () => {
    const { key: owner, workspace } = await createWorkspace();
    const apiKey = keyFor("azure");
    const response = await put(owner, "azure", { api_key: apiKey, config: { deployment: "missing-gpt4o" } });
    expect(response.status, response.text).toBe(422);
    expect(response.body.error).toMatchObject({ code: "invalid_model", field: "config.deployment", message: "Invalid model name. Validation failed." });
    expect(await storedRows(workspace.id)).toEqual([]);
  });

  it("proves an existing deployment with a request that costs nothing", async () => {
    const { key: owner } = await createWorkspace();
    const apiKey = keyFor("azure");
    const response = await put(owner, "azure", { api_key: apiKey, config: { deployment: "gpt4o-prod" } });
    expect(response.status, response.text).toBe(200);
    const seen = (await (await fetch(`${MOCK}/__requests`)).json()).filter((r) => r.headers["api-key"] === apiKey);
    expect(seen.map((r) => [r.method, r.path])).toEqual([
      ["GET", "/azure/openai/models"],
      ["POST", "/azure/openai/deployments/gpt4o-prod/chat/completions"],
    ]);
    expect(JSON.parse(seen[1].body), "no messages: no tokens").toEqual({});
    expect(seen[1].query["api-version"]).toBe("2024-10-21");
  });

  it("marks a deployment removed since as invalid on re-validation", async () => {
    const { key: owner, workspace } = await createWorkspace();
    await put(owner, "azure", { api_key: keyFor("azure"), config: { deployment: "gpt4o-prod" } });
    await env.DB.prepare("UPDATE provider_configs SET config = ? WHERE workspace_id = ?").bind(JSON.stringify({ deployment: "missing-now", api_version: "2024-10-21" }), workspace.id).run();
    const validated = await validate(owner, "azure");
    expect(validated.body).toMatchObject({ status: "invalid", error: { code: "invalid_model", field: "config.deployment" } });
  });
});

describe("metered fallback by consent", () => {
  async function workspaceWithBadKey(fields = {}) {
    const made = await createWorkspace(fields);
    const apiKey = keyFor("sk-");
    await put(made.key, "openai", { api_key: apiKey });
    await overrideKey(apiKey, 401, { error: { code: "invalid_api_key", message: "Incorrect API key provided" } });
    await validate(made.key, "openai");
    return made;
  }

  it("defaults to allow and shows the workspace's choice", async () => {
    const { workspace } = await createWorkspace();
    expect(workspace.metered_fallback).toBe("allow");
    const denied = await admin("PATCH", `/v1/workspaces/${workspace.id}`, { body: { metered_fallback: "deny" } });
    expect(denied.body.metered_fallback).toBe("deny");
    expect((await dbRow("SELECT metered_fallback FROM workspaces WHERE id = ?", workspace.id)).metered_fallback).toBe("deny");
    const bad = await admin("PATCH", `/v1/workspaces/${workspace.id}`, { body: { metered_fallback: "sometimes" } });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatchObject({ code: "invalid_request", field: "metered_fallback" });
  });

  it("deny answers 409 byok_unavailable with the reason, and hands out nothing", async () => {
    const { key: owner, workspace } = await workspaceWithBadKey();
    await admin("PATCH", `/v1/workspaces/${workspace.id}`, { body: { metered_fallback: "deny" } });
    const refused = await resolve(owner, { agent_id: "buddy" });
    expect(refused.status).toBe(409);
    expect(refused.body.error).toMatchObject({ code: "byok_unavailable", reason: "byok_invalid" });
    expect(refused.body.mode).toBeUndefined();
    const [denied] = await eventually(
      () => dbRows("SELECT target, detail FROM audit_events WHERE workspace_id = ? AND action = 'resolve.fallback_denied'", workspace.id),
      (rows) => rows.length === 1,
      "the refusal's audit entry",
    );
    // The resolve named no provider: the entry names the one whose key could not be used.
    expect(denied.target).toBe("openai");
    expect(JSON.parse(denied.detail)).toEqual({ provider: "openai", agent_id: "buddy", reason: "byok_invalid" });
    expect(await dbRows("SELECT id FROM audit_events WHERE workspace_id = ? AND action = 'resolve.fell_back'", workspace.id)).toEqual([]);
  });

  it("deny answers provider_removed for an agent routed to a removed provider, and leaves other reasons alone", async () => {
    const { key: owner } = await createWorkspace({ metered_fallback: "deny" });
    await put(owner, "anthropic", { api_key: keyFor("sk-ant-") });
    await call("PUT", "/v1/agents/routed/routing", { token: owner, body: { mode: "byok", provider: "anthropic" } });
    await call("PUT", "/v1/agents/metered/routing", { token: owner, body: { mode: "metered" } });
    await call("DELETE", "/v1/providers/anthropic", { token: owner });
    const refused = await resolve(owner, { agent_id: "routed" });
    expect(refused.status).toBe(409);
    expect(refused.body.error).toMatchObject({ code: "byok_unavailable", reason: "provider_removed" });
    expect((await resolve(owner, { agent_id: "metered" })).body).toEqual({ mode: "metered", reason: "agent_routed_metered" });
    expect((await resolve(owner)).body).toEqual({ mode: "metered", reason: "no_byok_configured" });
  });

  it("an agent's routing overrides its workspace either way", async () => {
    const { key: owner, workspace } = await workspaceWithBadKey();
    const strict = await call("PUT", "/v1/agents/strict/routing", { token: owner, body: { mode: "byok", provider: "openai", metered_fallback: "deny" } });
    expect(strict.body).toMatchObject({ agent_id: "strict", metered_fallback: "deny" });
    expect((await call("GET", "/v1/agents/strict/routing", { token: owner })).body.metered_fallback).toBe("deny");
    await call("PUT", "/v1/agents/plain/routing", { token: owner, body: { mode: "byok", provider: "openai" } });
    expect((await call("GET", "/v1/agents/plain/routing", { token: owner })).body.metered_fallback).toBeNull();
    expect((await resolve(owner, { agent_id: "strict" })).status).toBe(409);
    expect((await resolve(owner, { agent_id: "plain" })).body).toEqual({ mode: "metered", reason: "byok_invalid" });

    await admin("PATCH", `/v1/workspaces/${workspace.id}`, { body: { metered_fallback: "deny" } });
    await call("PUT", "/v1/agents/lenient/routing", { token: owner, body: { mode: "byok", provider: "openai", metered_fallback: "allow" } });
    expect((await resolve(owner, { agent_id: "lenient" })).body).toEqual({ mode: "metered", reason: "byok_invalid" });
    expect((await resolve(owner, { agent_id: "plain" })).status).toBe(409);
  });

  it("refuses metered_fallback on a metered route and values other than allow or deny", async () => {
    const { key: owner } = await createWorkspace();
    await put(owner, "openai", { api_key: keyFor("sk-") });
    for (const body of [{ mode: "metered", metered_fallback: "deny" }, { mode: "byok", provider: "openai", metered_fallback: "never" }]) {
      const refused = await call("PUT", "/v1/agents/a/routing", { token: owner, body });
      expect(refused.status, JSON.stringify(body)).toBe(400);
      expect(refused.body.error).toMatchObject({ code: "invalid_request", field: "metered_fallback" });
    }
  });

  it("allow falls back to metered, audits every fallback and notifies once an hour per agent and provider", async () => {
    const { key: owner, workspace } = await workspaceWithBadKey();
    const receiver = `/receiver/ok/fallback-${workspace.id}`;
    await call("PUT", "/v1/webhooks/endpoint", { token: owner, body: { url: `${MOCK}${receiver}` } });
    for (let i = 0; i < 3; i++) {
      expect((await resolve(owner, { agent_id: "buddy" })).body).toEqual({ mode: "metered", reason: "byok_invalid" });
    }
    await resolve(owner, { agent_id: "other" });
    const audits = await eventually(
      () => dbRows("SELECT target, detail FROM audit_events WHERE workspace_id = ? AND action = 'resolve.fell_back'", workspace.id),
      (rows) => rows.length === 4,
      "four fallback audit entries",
    );
    expect(audits[0].target).toBe("openai");
    expect(JSON.parse(audits[0].detail)).toMatchObject({ provider: "openai", reason: "byok_invalid" });
    const notices = await eventually(
      () => dbRows("SELECT payload FROM outbox WHERE workspace_id = ? AND event_type = 'provider_key.fallback_used'", workspace.id),
      (rows) => rows.length === 2,
      "one notification per agent",
    );
    const data = notices.map((n) => JSON.parse(n.payload).data).sort((a, b) => a.agent_id.localeCompare(b.agent_id));
    expect(data).toEqual([
      { agent_id: "buddy", provider: "openai", reason: "byok_invalid" },
      { agent_id: "other", provider: "openai", reason: "byok_invalid" },
    ]);
    const delivered = await eventually(
      async () => (await (await fetch(`${MOCK}/__requests`)).json()).filter((r) => r.path === receiver),
      (rows) => rows.length === 2,
      "both notifications delivered",
    );
    expect(JSON.parse(delivered[0].body).type).toBe("provider_key.fallback_used");

    // An hour later the same agent is told again.
    await env.DB.prepare("UPDATE fallback_notices SET notified_at = notified_at - 3600000 WHERE workspace_id = ?").bind(workspace.id).run();
    await resolve(owner, { agent_id: "buddy" });
    await eventually(
      () => dbRows("SELECT id FROM outbox WHERE workspace_id = ? AND event_type = 'provider_key.fallback_used'", workspace.id),
      (rows) => rows.length === 3,
      "a third notification after the hour",
    );
  });
});
