// Security review, issue 10: what a provider or a report can make the Worker hold or lose at
// scale. Model lists past the memory cap, leak reports of 1,000 live keys, and encryption that
// binds each secret to the name it is stored under.
import { createExecutionContext, createScheduledController, env, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import worker from "../../build/index.js";
import { admin, call, createWorkspace, dbRow, dbRows, sha256Hex, unknownKey } from "./helpers.js";

const MOCK = env.MOCK_PROVIDER;
const OPENAI_HOST = `${MOCK}/openai/v1`;
const MIB = 1024 * 1024;
let counter = 0;
const unique = (prefix) => `${prefix}${Date.now().toString(36)}${(counter += 1)}`;

async function runScheduled() {
  const ctx = createExecutionContext();
  await new worker(ctx, env).scheduled(createScheduledController({ cron: "*/5 * * * *", scheduledTime: Date.now() }));
  await waitOnExecutionContext(ctx);
}

async function configureOpenAi(owner, apiKey) {
  return call("PUT", "/v1/providers/openai", { token: owner, body: { api_key: apiKey, api_host: OPENAI_HOST, model: "gpt-4o" } });
}

async function blobsOf(workspaceId) {
  const { keys } = await env.SECRETS.list();
  return keys.map((k) => k.name).filter((name) => name.includes(workspaceId));
}

/** From now on the mock answers `apiKey` with its model list padded to `bytes`. */
async function growList(apiKey, bytes) {
  const response = await fetch(`${MOCK}/__keys/${encodeURIComponent(apiKey)}`, { method: "PUT", body: JSON.stringify({ list_bytes: bytes }) });
  expect(response.status).toBe(204);
}

describe("provider model lists: read within a 4 MiB cap", () => {
  it("reads a list just under 4 MiB for the model at its very end, and refuses one just over it, declared or chunked, storing nothing", async () => {
    const under = await createWorkspace();
    const accepted = await configureOpenAi(under.key, `sk-listbytes-${4 * MIB - 4096}`);
    expect(accepted.status, accepted.text).toBe(200);
    expect(accepted.body).toMatchObject({ status: "valid", model: "gpt-4o", version: 1 });

    for (const apiKey of [`sk-listbytes-${4 * MIB + 4096}`, `sk-listbytes-${4 * MIB + 4096}-chunked`]) {
      const over = await createWorkspace();
      const refused = await configureOpenAi(over.key, apiKey);
      expect(refused.status, `${apiKey}: ${refused.text}`).toBe(502);
      expect(refused.body.error.code).toBe("provider_unavailable");
      expect(await dbRow("SELECT * FROM provider_configs WHERE workspace_id = ?", over.workspace.id)).toBeNull();
      expect(await blobsOf(over.workspace.id)).toEqual([]);
    }
  });

  it("reports provider_unavailable from /validate once the key's list has grown past the cap, keeping the status it had", async () => {
    const { key: owner, workspace } = await createWorkspace();
    const apiKey = unique("sk-grows-");
    expect((await configureOpenAi(owner, apiKey)).status).toBe(200);
    const before = await dbRow("SELECT status, validated_at FROM provider_configs WHERE workspace_id = ?", workspace.id);
    await growList(apiKey, 5 * MIB);

    const validated = await call("POST", "/v1/providers/openai/validate", { token: owner });
    expect(validated.status, validated.text).toBe(200);
    expect(validated.body).toMatchObject({ status: "valid", error: { code: "provider_unavailable" } });
    expect(await dbRow("SELECT status, validated_at FROM provider_configs WHERE workspace_id = ?", workspace.id)).toEqual(before);
  });

  it("leaves status and validated_at alone when the cron's re-validation meets a list past the cap", async () => {
    const { key: owner, workspace } = await createWorkspace();
    const apiKey = unique("sk-grows-");
    expect((await configureOpenAi(owner, apiKey)).status).toBe(200);
    await env.DB.prepare("UPDATE provider_configs SET validated_at = 1000, checked_at = NULL WHERE workspace_id = ?").bind(workspace.id).run();
    await growList(apiKey, 5 * MIB);

    await runScheduled();
    const row = await dbRow("SELECT status, validated_at, checked_at FROM provider_configs WHERE workspace_id = ?", workspace.id);
    expect(row.checked_at, "the cron took the key").toBeGreaterThan(1000);
    expect(row).toMatchObject({ status: "valid", validated_at: 1000 });
  });
});

/** Stores `count` live keys of the workspace straight into D1 (the format of src/keys/token.rs). */
async function insertLiveKeys(workspaceId, count) {
  const tokens = Array.from({ length: count }, () => unknownKey());
  const rows = await Promise.all(
    tokens.map(async (token, i) => ({ id: `key_scale${String(i).padStart(4, "0")}${crypto.randomUUID().replaceAll("-", "").slice(0, 11)}`, hash: await sha256Hex(token), last4: token.slice(-4) })),
  );
  await env.DB.prepare(
    `INSERT INTO api_keys (id, workspace_id, name, key_hash, prefix, last4, capabilities, created_at)
     SELECT json_extract(value, '$.id'), ?1, 'scale ' || key, json_extract(value, '$.hash'), 'kw_live_', json_extract(value, '$.last4'), '["desktop:read"]', ?2
     FROM json_each(?3)`,
  )
    .bind(workspaceId, Date.now() - 1000, JSON.stringify(rows))
    .run();
  return { tokens, ids: rows.map((r) => r.id), hashes: rows.map((r) => r.hash) };
}

const count = async (sql, ...args) => (await dbRow(`SELECT COUNT(*) AS n FROM (${sql})`, ...args)).n;

function base64ToBytes(text) {
  return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
}

/** Sends a signed Standard Webhooks delivery with a fresh webhook-id. */
async function deliver(workspaceId, secret, payload) {
  const id = unique("msg_scale_");
  const timestamp = Math.floor(Date.now() / 1000);
  const body = JSON.stringify(payload);
  const key = await crypto.subtle.importKey("raw", base64ToBytes(secret.slice("whsec_".length)), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const mac = await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(`${id}.${timestamp}.${body}`));
  const signature = `v1,${btoa(String.fromCharCode(...new Uint8Array(mac)))}`;
  const headers = { "content-type": "application/json", "webhook-id": id, "webhook-timestamp": String(timestamp), "webhook-signature": signature };
  return call("POST", `/v1/hooks/${workspaceId}`, { body, headers });
}

describe("leak reports of 1,000 live keys", () => {
  it("revokes, audits, queues and labels all 1,000 from one operator report, and a repeat labels them true_positive again", async () => {
    const { key: owner, workspace } = await createWorkspace();
    const endpoint = await call("PUT", "/v1/webhooks/endpoint", { token: owner, body: { url: `${MOCK}/receiver/ok/${unique("scale")}` } });
    expect(endpoint.status).toBe(200);
    const { tokens, hashes } = await insertLiveKeys(workspace.id, 1000);
    const body = tokens.map((token) => ({ token }));
    const expected = hashes.map((token_hash) => ({ token_hash, label: "true_positive" }));

    const first = await admin("POST", "/v1/leaks", { body });
    expect(first.status, first.text.slice(0, 500)).toBe(200);
    expect(first.body).toEqual(expected);
    expect(await count("SELECT 1 FROM api_keys WHERE workspace_id = ? AND name LIKE 'scale %' AND revoked_at IS NULL", workspace.id)).toBe(0);
    expect(await count("SELECT 1 FROM audit_events WHERE workspace_id = ? AND action = 'key.leaked'", workspace.id)).toBe(1000);
    const operatorEntries = await count(
      "SELECT 1 FROM audit_events e JOIN api_keys k ON k.id = e.target WHERE e.workspace_id IS NULL AND e.action = 'key.leaked' AND k.workspace_id = ?",
      workspace.id,
    );
    expect(operatorEntries).toBe(1000);
    const summaries = await dbRows("SELECT detail FROM audit_events WHERE workspace_id IS NULL AND action = 'leaks.reported' ORDER BY seq DESC LIMIT 1");
    expect(JSON.parse(summaries[0].detail)).toMatchObject({ tokens: 1000, revoked: expect.any(Array) });
    expect(JSON.parse(summaries[0].detail).revoked).toHaveLength(1000);
    expect(await count("SELECT 1 FROM outbox WHERE workspace_id = ? AND event_type = 'api_key.revoked'", workspace.id)).toBe(1000);
    expect((await call("GET", "/v1/me", { token: tokens[999] })).status).toBe(401);

    const repeat = await admin("POST", "/v1/leaks", { body });
    expect(repeat.status, repeat.text.slice(0, 500)).toBe(200);
    expect(repeat.body).toEqual(expected);
    expect(await count("SELECT 1 FROM audit_events WHERE workspace_id = ? AND action = 'key.leaked'", workspace.id), "a repeat revokes and audits nothing").toBe(1000);
  });

  it("revokes all 1,000 from one signed api_key.leaked delivery, and a retried delivery labels them true_positive again", async () => {
    const { key: owner, workspace } = await createWorkspace();
    const rotated = await call("POST", "/v1/webhooks/secret", { token: owner, body: {} });
    expect(rotated.status).toBe(201);
    const { tokens, hashes } = await insertLiveKeys(workspace.id, 1000);
    const payload = { type: "api_key.leaked", data: { tokens: tokens.map((token) => ({ token })) } };
    const expected = hashes.map((token_hash) => ({ token_hash, label: "true_positive" }));

    for (const attempt of ["first delivery", "retried delivery"]) {
      const response = await deliver(workspace.id, rotated.body.secret, payload);
      expect(response.status, `${attempt}: ${response.text.slice(0, 500)}`).toBe(200);
      expect(response.body, attempt).toEqual(expected);
    }
    expect(await count("SELECT 1 FROM api_keys WHERE workspace_id = ? AND name LIKE 'scale %' AND revoked_at IS NULL", workspace.id)).toBe(0);
    expect(await count("SELECT 1 FROM audit_events WHERE workspace_id = ? AND action = 'key.leaked'", workspace.id)).toBe(1000);
  });
});
