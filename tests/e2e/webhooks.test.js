// Signed inbound webhooks, outbound notifications, the audit trail and the scheduled handler.
import { createExecutionContext, createScheduledController, env, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import worker from "../../build/index.js";
import { admin, call, createKey, createWorkspace, dbRow, dbRows, sleep, eventually } from "./helpers.js";

const MOCK = env.MOCK_PROVIDER;
let counter = 0;
const unique = (prefix) => `${prefix}${Date.now().toString(36)}${(counter += 1)}`;

function base64ToBytes(text) {
  return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
}

async function hmacBase64(secret, message) {
  const key = await crypto.subtle.importKey("raw", base64ToBytes(secret.slice("whsec_".length)), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const mac = await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(message));
  return btoa(String.fromCharCode(...new Uint8Array(mac)));
}

/** Sends a Standard Webhooks delivery; `override` replaces any header or the raw body. */
async function deliver(workspaceId, secret, payload, override = {}) {
  const id = override.id ?? unique("msg_");
  // A timestamp may be given relative to now (`skew`), read at sending time so that a slow run
  // cannot move it across the 300 s boundary.
  const timestamp = override.timestamp ?? Math.floor(Date.now() / 1000) + (override.skew ?? 0);
  const body = override.body ?? JSON.stringify(payload);
  const signed = override.signedBody ?? body;
  const signature = override.signature ?? `v1,${await hmacBase64(secret, `${id}.${timestamp}.${signed}`)}`;
  const headers = { "content-type": "application/json", "webhook-id": id, "webhook-timestamp": String(timestamp), "webhook-signature": signature };
  for (const name of override.omit ?? []) delete headers[name];
  const response = await call("POST", `/v1/hooks/${workspaceId}`, { body, headers });
  return { ...response, id };
}

async function withSecret(fields = {}) {
  const created = await createWorkspace(fields);
  const rotated = await call("POST", "/v1/webhooks/secret", { token: created.key, body: {} });
  expect(rotated.status).toBe(201);
  return { ...created, secret: rotated.body.secret };
}

async function put(owner, provider, body) {
  const host = { openai: `${MOCK}/openai/v1`, anthropic: `${MOCK}/anthropic` }[provider];
  const response = await call("PUT", `/v1/providers/${provider}`, { token: owner, body: { api_host: host, ...body } });
  expect(response.status, response.text).toBe(200);
  return response.body;
}

async function runScheduled(overrides = {}) {
  const ctx = createExecutionContext();
  const instance = new worker(ctx, { ...env, ...overrides });
  await instance.scheduled(createScheduledController({ cron: "*/5 * * * *", scheduledTime: Date.now() }));
  await waitOnExecutionContext(ctx);
}

describe("POST /v1/webhooks/secret", () => {
  it("issues a whsec_ secret of 32 bytes once, stored only sealed", async () => {
    const { key: owner, workspace } = await createWorkspace();
    const response = await call("POST", "/v1/webhooks/secret", { token: owner });
    expect(response.status).toBe(201);
    expect(response.headers.get("cache-control")).toBe("no-store");
    expect(response.body).toEqual({ secret: expect.stringMatching(/^whsec_[A-Za-z0-9+/]{43}=$/), created_at: expect.any(String) });
    expect(base64ToBytes(response.body.secret.slice(6))).toHaveLength(32);
    const rows = JSON.stringify(await dbRows("SELECT * FROM webhook_secrets WHERE workspace_id = ?", workspace.id));
    expect(rows).not.toContain(response.body.secret.slice(6));
  });

  it("needs webhooks:manage and a writable workspace", async () => {
    const { key: owner, workspace } = await createWorkspace();
    const other = await createKey(owner, { capabilities: ["keys:read"] });
    expect((await call("POST", "/v1/webhooks/secret", { token: other.key })).body.error).toMatchObject({ code: "missing_capability", required: "webhooks:manage" });
    await admin("PATCH", `/v1/workspaces/${workspace.id}`, { body: { read_only: true } });
    expect((await call("POST", "/v1/webhooks/secret", { token: owner })).body.error.code).toBe("workspace_read_only");
  });
});

describe("POST /v1/hooks/{workspace_id}: signatures", () => {
  it("accepts a valid signature and revokes the named key", async () => {
    const { key: owner, workspace, secret } = await withSecret();
    const victim = await createKey(owner);
    const response = await deliver(workspace.id, secret, { type: "api_key.revoke", data: { key_id: victim.id } });
    expect(response.status, response.text).toBe(200);
    expect(response.body).toMatchObject({ status: "revoked", key_id: victim.id });
    expect((await call("GET", "/v1/me", { token: victim.key })).status).toBe(401);
    const actions = (await dbRows("SELECT action FROM audit_events WHERE workspace_id = ? ORDER BY seq", workspace.id)).map((e) => e.action);
    expect(actions).toEqual(expect.arrayContaining(["webhook.received", "key.revoked"]));
  });

  it("accepts any valid entry among several signatures", async () => {
    const { key: owner, workspace, secret } = await withSecret();
    const victim = await createKey(owner);
    const id = unique("msg_");
    const timestamp = Math.floor(Date.now() / 1000);
    const body = JSON.stringify({ type: "api_key.revoke", data: { key_id: victim.id } });
    const good = await hmacBase64(secret, `${id}.${timestamp}.${body}`);
    const response = await deliver(workspace.id, secret, null, { id, timestamp, body, signature: `v1,AAAA v2,zzz v1,${good}` });
    expect(response.status).toBe(200);
  });

  it("refuses each malformed, stale, forged or misdirected delivery with the contract's code", async () => {
    const { key: owner, workspace, secret } = await withSecret();
    const victim = await createKey(owner);
    const payload = { type: "api_key.revoke", data: { key_id: victim.id } };
    const { secret: otherSecret } = await withSecret();
    const cases = [
      [{ omit: ["webhook-id"] }, 400, "invalid_webhook"],
      [{ omit: ["webhook-timestamp"] }, 400, "invalid_webhook"],
      [{ omit: ["webhook-signature"] }, 400, "invalid_webhook"],
      [{ skew: -302 }, 400, "stale_webhook"],
      [{ skew: 302 }, 400, "stale_webhook"],
      [{ timestamp: "yesterday" }, 400, "stale_webhook"],
      [{ secret: otherSecret }, 401, "invalid_signature"],
      [{ signedBody: JSON.stringify({ type: "api_key.revoke", data: { key_id: "key_other" } }) }, 401, "invalid_signature"],
      [{ signature: "v1,bm90IGEgc2lnbmF0dXJl" }, 401, "invalid_signature"],
    ];
    for (const [override, status, code] of cases) {
      const response = await deliver(workspace.id, override.secret ?? secret, payload, override);
      expect(response.status, JSON.stringify(override)).toBe(status);
      expect(response.body.error.code, JSON.stringify(override)).toBe(code);
    }
    const unknown = await deliver("ws_doesnotexist", secret, payload);
    expect(unknown.status).toBe(401);
    expect(unknown.body.error.code).toBe("invalid_signature");
    expect((await call("GET", "/v1/me", { token: victim.key })).status).toBe(200);
  });

  it("keeps the previous secret valid during its grace period and refuses it after", async () => {
    const { key: owner, workspace, secret: first } = await withSecret();
    const rotated = await call("POST", "/v1/webhooks/secret", { token: owner, body: { grace_seconds: 1 } });
    const second = rotated.body.secret;
    const ping = async (secret) => (await deliver(workspace.id, secret, { type: "api_key.revoke", data: { key_id: "key_nonexistent" } })).status;
    expect(await ping(first)).toBe(404);
    expect(await ping(second)).toBe(404);
    await sleep(1100);
    expect(await ping(first)).toBe(401);
    expect(await ping(second)).toBe(404);
  });

  it("answers 400 unsupported_event for another type, after the signature", async () => {
    const { workspace, secret } = await withSecret();
    const response = await deliver(workspace.id, secret, { type: "invoice.paid", data: {} });
    expect(response.status).toBe(400);
    expect(response.body.error.code).toBe("unsupported_event");
  });
});

describe("POST /v1/hooks/{workspace_id}: once per webhook-id", () => {
  it("answers a replay with the first response and webhook-replayed: true, changing nothing", async () => {
    const { key: owner, workspace, secret } = await withSecret();
    await put(owner, "openai", { api_key: unique("sk-") });
    const payload = { type: "provider_key.rotated", data: { provider: "openai", api_key: unique("sk-") } };
    const first = await deliver(workspace.id, secret, payload);
    expect(first.body).toEqual({ status: "rotated", provider: "openai", version: 2 });
    expect(first.headers.get("webhook-replayed")).toBeNull();
    const replay = await deliver(workspace.id, secret, payload, { id: first.id });
    expect(replay.status).toBe(200);
    expect(replay.body).toEqual(first.body);
    expect(replay.headers.get("webhook-replayed")).toBe("true");
    expect((await dbRow("SELECT version FROM provider_configs WHERE workspace_id = ?", workspace.id)).version).toBe(2);
  });

  it("processes two concurrent deliveries of one id once", async () => {
    const { key: owner, workspace, secret } = await withSecret();
    await put(owner, "openai", { api_key: unique("sk-") });
    const id = unique("msg_");
    const payload = { type: "provider_key.rotated", data: { provider: "openai", api_key: unique("sk-") } };
    const [a, b] = await Promise.all([deliver(workspace.id, secret, payload, { id }), deliver(workspace.id, secret, payload, { id })]);
    expect([a.status, b.status]).toEqual([200, 200]);
    expect(a.body).toEqual(b.body);
    expect([a.headers.get("webhook-replayed"), b.headers.get("webhook-replayed")].filter(Boolean)).toEqual(["true"]);
    expect((await dbRow("SELECT version FROM provider_configs WHERE workspace_id = ?", workspace.id)).version).toBe(2);
    const received = await dbRows("SELECT id FROM audit_events WHERE workspace_id = ? AND action = 'webhook.received'", workspace.id);
    expect(received).toHaveLength(1);
  });
});

describe("POST /v1/hooks/{workspace_id}: events", () => {
  it("provider_key.rotated with an invalid new key answers configure's error and the old key keeps serving", async () => {
    const { key: owner, workspace, secret } = await withSecret();
    const oldKey = unique("sk-");
    await put(owner, "openai", { api_key: oldKey });
    const response = await deliver(workspace.id, secret, { type: "provider_key.rotated", data: { provider: "openai", api_key: unique("sk-invalid-") } });
    expect(response.status).toBe(422);
    expect(response.body.error.code).toBe("invalid_key");
    const resolved = await call("POST", "/v1/resolve", { token: owner, body: {} });
    expect(resolved.body).toMatchObject({ mode: "byok", api_key: oldKey });
    expect((await dbRow("SELECT version FROM provider_configs WHERE workspace_id = ?", workspace.id)).version).toBe(1);
  });

  it("provider_key.rotated with a valid key makes the next resolve return it, keeping the host", async () => {
    const { key: owner, workspace, secret } = await withSecret();
    await put(owner, "anthropic", { api_key: unique("sk-ant-"), model: "claude-sonnet-4-5" });
    const newKey = unique("sk-ant-api03-");
    const response = await deliver(workspace.id, secret, { type: "provider_key.rotated", data: { provider: "claude", api_key: newKey } });
    expect(response.body).toEqual({ status: "rotated", provider: "anthropic", version: 2 });
    const resolved = await call("POST", "/v1/resolve", { token: owner, body: {} });
    expect(resolved.body).toMatchObject({ provider: "anthropic", api_key: newKey, model: "claude-sonnet-4-5", api_host: `${MOCK}/anthropic` });
    const actions = (await dbRows("SELECT action, detail FROM audit_events WHERE workspace_id = ?", workspace.id)).map((e) => e.action);
    expect(actions).toEqual(expect.arrayContaining(["webhook.received", "provider.rotated"]));
    expect(JSON.stringify(await dbRows("SELECT * FROM audit_events WHERE workspace_id = ?", workspace.id))).not.toContain(newKey);
  });

  it("api_key.leaked revokes this workspace's leaked keys only", async () => {
    const { key: owner, workspace, secret } = await withSecret();
    const leaked = await createKey(owner);
    const foreign = await createWorkspace();
    const response = await deliver(workspace.id, secret, { type: "api_key.leaked", data: { tokens: [{ token: leaked.key, url: "https://x" }, { token: foreign.key }] } });
    expect(response.status).toBe(200);
    expect(response.body.map((l) => l.label)).toEqual(["true_positive", "false_positive"]);
    expect((await call("GET", "/v1/me", { token: leaked.key })).status).toBe(401);
    expect((await call("GET", "/v1/me", { token: foreign.key })).status).toBe(200);
  });

  it("refuses rotation and revocation in a read-only workspace, but leak reports still revoke", async () => {
    const { key: owner, workspace, secret } = await withSecret();
    const victim = await createKey(owner);
    await admin("PATCH", `/v1/workspaces/${workspace.id}`, { body: { read_only: true } });
    const revoke = await deliver(workspace.id, secret, { type: "api_key.revoke", data: { key_id: victim.id } });
    expect(revoke.body.error.code).toBe("workspace_read_only");
    const rotate = await deliver(workspace.id, secret, { type: "provider_key.rotated", data: { provider: "openai", api_key: "sk-x" } });
    expect(rotate.body.error.code).toBe("workspace_read_only");
    const leak = await deliver(workspace.id, secret, { type: "api_key.leaked", data: { tokens: [{ token: victim.key }] } });
    expect(leak.body[0].label).toBe("true_positive");
  });
});

describe("notifications", () => {
  it("registers an https endpoint with a secret shown once and refuses private hosts", async () => {
    const { key: owner, workspace } = await createWorkspace();
    const refused = await call("PUT", "/v1/webhooks/endpoint", { token: owner, body: { url: "http://10.1.2.3/hook" } });
    expect(refused.status).toBe(400);
    expect(refused.body.error).toMatchObject({ code: "invalid_host", field: "url" });
    expect((await call("GET", "/v1/webhooks/endpoint", { token: owner })).status).toBe(404);
    const url = `${MOCK}/receiver/ok/${unique("ep")}`;
    const set = await call("PUT", "/v1/webhooks/endpoint", { token: owner, body: { url } });
    expect(set.status).toBe(200);
    expect(set.headers.get("cache-control")).toBe("no-store");
    expect(set.body).toEqual({ url, secret: expect.stringMatching(/^whsec_/), created_at: expect.any(String) });
    expect((await call("GET", "/v1/webhooks/endpoint", { token: owner })).body).toEqual({ url, created_at: set.body.created_at });
    expect((await call("DELETE", "/v1/webhooks/endpoint", { token: owner })).body).toEqual({ status: "removed" });
    expect((await call("DELETE", "/v1/webhooks/endpoint", { token: owner })).body).toEqual({ status: "removed" });
    expect((await call("GET", "/v1/webhooks/endpoint", { token: owner })).status).toBe(404);
    const removals = await dbRows("SELECT action FROM audit_events WHERE workspace_id = ? AND action = 'notifications.endpoint_removed'", workspace.id);
    expect(removals, "audited once, by the removal that happened").toHaveLength(1);
  });

  it("delivers api_key.revoked signed with the endpoint's secret, without any secret in data", async () => {
    const { key: owner } = await createWorkspace();
    const url = `${MOCK}/receiver/ok/${unique("ep")}`;
    const { body: endpoint } = await call("PUT", "/v1/webhooks/endpoint", { token: owner, body: { url } });
    const victim = await createKey(owner);
    await call("DELETE", `/v1/keys/${victim.id}`, { token: owner });
    const path = new URL(url).pathname;
    const [delivery] = await eventually(
      async () => (await (await fetch(`${MOCK}/__requests`)).json()).filter((r) => r.path === path),
      (found) => found.length === 1,
      "delivery",
    );
    const payload = JSON.parse(delivery.body);
    expect(payload).toMatchObject({ type: "api_key.revoked", timestamp: expect.any(String), data: { key_id: victim.id } });
    expect(delivery.body).not.toContain(victim.key);
    const expected = await hmacBase64(endpoint.secret, `${delivery.headers["webhook-id"]}.${delivery.headers["webhook-timestamp"]}.${delivery.body}`);
    expect(delivery.headers["webhook-signature"]).toBe(`v1,${expected}`);
  });

  it("retries a failed delivery from the scheduled handler", async () => {
    const { key: owner, workspace } = await createWorkspace();
    const url = `${MOCK}/receiver/flaky/${unique("ep")}`;
    await call("PUT", "/v1/webhooks/endpoint", { token: owner, body: { url } });
    const old = await createKey(owner);
    await call("POST", `/v1/keys/${old.id}/reroll`, { token: owner });
    const row = await eventually(
      () => dbRow("SELECT * FROM outbox WHERE workspace_id = ?", workspace.id),
      (r) => r && r.attempts === 1 && r.last_status === 503,
      "a first failed attempt",
    );
    expect(row.delivered_at).toBeNull();
    expect(row.next_attempt_at).toBeGreaterThan(Date.now());
    await env.DB.prepare("UPDATE outbox SET next_attempt_at = 0 WHERE id = ?").bind(row.id).run();
    await runScheduled();
    const after = await dbRow("SELECT * FROM outbox WHERE id = ?", row.id);
    expect(after).toMatchObject({ attempts: 2, last_status: 204 });
    expect(after.delivered_at).toEqual(expect.any(Number));
    const deliveries = (await (await fetch(`${MOCK}/__requests`)).json()).filter((r) => r.path === new URL(url).pathname);
    expect(deliveries).toHaveLength(2);
    expect(deliveries[0].headers["webhook-id"]).toBe(deliveries[1].headers["webhook-id"]);
    expect(JSON.parse(deliveries[1].body)).toMatchObject({ type: "api_key.rerolled", data: { key_id: old.id } });
  });
});

describe("GET /v1/audit", () => {
  it("pages a workspace's trail newest first, with audit:read and never a secret", async () => {
    const { key: owner, workspace } = await createWorkspace();
    const made = [];
    for (let i = 0; i < 3; i++) made.push(await createKey(owner, { name: `k${i}` }));
    const first = await call("GET", "/v1/audit?limit=2", { token: owner });
    expect(first.status).toBe(200);
    expect(first.body.items).toHaveLength(2);
    expect(first.body.items[0]).toEqual({
      id: expect.stringMatching(/^evt_/),
      at: expect.any(String),
      action: "key.created",
      actor_key_id: expect.stringMatching(/^key_/),
      target: made[2].id,
      ip: expect.any(String),
      detail: expect.any(Object),
    });
    const rest = await call("GET", `/v1/audit?limit=10&cursor=${encodeURIComponent(first.body.next_cursor)}`, { token: owner });
    const targets = [...first.body.items, ...rest.body.items].map((e) => e.target);
    expect(targets.slice(0, 3)).toEqual([made[2].id, made[1].id, made[0].id]);
    expect(rest.body.next_cursor).toBeNull();
    const everything = JSON.stringify([first.body, rest.body]);
    for (const key of [owner, ...made.map((k) => k.key)]) expect(everything).not.toContain(key);
    const reader = await createKey(owner, { capabilities: ["keys:read"] });
    expect((await call("GET", "/v1/audit", { token: reader.key })).body.error).toMatchObject({ code: "missing_capability", required: "audit:read" });
    // The operator reads the same trail, which now ends with the reader key's creation.
    expect((await admin("GET", `/v1/audit?workspace_id=${workspace.id}`)).body.items[0].target).toBe(reader.id);
  });

  it("shows the operator-level entries to the admin token", async () => {
    await admin("POST", "/v1/leaks", { body: [{ token: "ghp_not_ours" }] });
    const response = await admin("GET", "/v1/audit?limit=100");
    expect(response.status).toBe(200);
    expect(response.body.items.map((e) => e.action)).toContain("leaks.reported");
  });
});

describe("scheduled handler", () => {
  it("does each job once when run twice at once and again after", async () => {
    const { key: owner, workspace } = await createWorkspace();
    const apiKey = unique("sk-");
    const first = await put(owner, "openai", { api_key: apiKey });
    const replaced = await dbRow("SELECT blob_name FROM provider_configs WHERE workspace_id = ?", workspace.id);
    await put(owner, "openai", { api_key: apiKey });
    expect(first.version).toBe(1);
    // Age the replaced blob, the last validation and a receipt past their limits.
    await env.DB.prepare("UPDATE retired_blobs SET retired_at = 0 WHERE blob_name = ?").bind(replaced.blob_name).run();
    await env.DB.prepare("UPDATE provider_configs SET validated_at = 1 WHERE workspace_id = ?").bind(workspace.id).run();
    await env.DB.prepare("INSERT INTO webhook_receipts (workspace_id, webhook_id, claim, received_at, status, response) VALUES (?, 'msg_old', 'c', 1, 200, '{}')")
      .bind(workspace.id)
      .run();
    await fetch(`${MOCK}/__keys/${encodeURIComponent(apiKey)}`, { method: "PUT", body: JSON.stringify({ status: 401, body: { error: { code: "invalid_api_key" } } }) });
    expect(await env.SECRETS.get(replaced.blob_name)).toEqual(expect.any(String));

    // Twice at once, then once more: each job is done exactly once.
    await Promise.all([runScheduled(), runScheduled()]);
    await runScheduled();

    expect(await env.SECRETS.get(replaced.blob_name)).toBeNull();
    expect(await dbRow("SELECT * FROM retired_blobs WHERE blob_name = ?", replaced.blob_name)).toBeNull();
    expect(await dbRow("SELECT * FROM webhook_receipts WHERE workspace_id = ?", workspace.id)).toBeNull();
    const config = await dbRow("SELECT status, validated_at FROM provider_configs WHERE workspace_id = ?", workspace.id);
    expect(config.status).toBe("invalid");
    const invalidated = await dbRows("SELECT action FROM audit_events WHERE workspace_id = ? AND action = 'provider.invalidated'", workspace.id);
    expect(invalidated).toHaveLength(1);
    expect((await call("POST", "/v1/resolve", { token: owner, body: {} })).body).toEqual({ mode: "metered", reason: "byok_invalid" });
    await fetch(`${MOCK}/__keys/${encodeURIComponent(apiKey)}`, { method: "DELETE" });
  });
});
