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

/**
 * Configures through a Worker with the production 10 s provider timeout rather than the suite's
 * 1.5 s: sending and reading 4 MiB on a loaded machine must not turn into a timeout here.
 */
async function configureOpenAiPatiently(owner, apiKey) {
  const ctx = createExecutionContext();
  const instance = new worker(ctx, { ...env, PROVIDER_TIMEOUT_MS: "10000" });
  const headers = { "content-type": "application/json", authorization: `Bearer ${owner}`, "cf-connecting-ip": "10.9.8.7" };
  const body = JSON.stringify({ api_key: apiKey, api_host: OPENAI_HOST, model: "gpt-4o" });
  const response = await instance.fetch(new Request("http://keywarden.test/v1/providers/openai", { method: "PUT", headers, body }));
  await waitOnExecutionContext(ctx);
  const text = await response.text();
  return { status: response.status, text, body: JSON.parse(text) };
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
    const accepted = await configureOpenAiPatiently(under.key, `sk-listbytes-${4 * MIB - 4096}`);
    expect(accepted.status, accepted.text).toBe(200);
    expect(accepted.body).toMatchObject({ status: "valid", model: "gpt-4o", version: 1 });

    for (const apiKey of [`sk-listbytes-${4 * MIB + 4096}`, `sk-listbytes-${4 * MIB + 4096}-chunked`]) {
      const over = await createWorkspace();
      const refused = await configureOpenAiPatiently(over.key, apiKey);
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
    const expected = hashes.map((token_hash) => ({ token_hash, token_type: null, label: "true_positive" }));

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
    const expected = hashes.map((token_hash) => ({ token_hash, token_type: null, label: "true_positive" }));

    for (const attempt of ["first delivery", "retried delivery"]) {
      const response = await deliver(workspace.id, rotated.body.secret, payload);
      expect(response.status, `${attempt}: ${response.text.slice(0, 500)}`).toBe(200);
      expect(response.body, attempt).toEqual(expected);
    }
    expect(await count("SELECT 1 FROM api_keys WHERE workspace_id = ? AND name LIKE 'scale %' AND revoked_at IS NULL", workspace.id)).toBe(0);
    expect(await count("SELECT 1 FROM audit_events WHERE workspace_id = ? AND action = 'key.leaked'", workspace.id)).toBe(1000);
  });
});

const bytesToBase64 = (bytes) => btoa(String.fromCharCode(...new Uint8Array(bytes)));

/** Seals `plaintext` exactly as keywarden did before names were bound: a `v: 1` envelope. */
async function sealUnbound(plaintext, workspaceId, kind, version) {
  const [kekId, kekBase64] = env.VAULT_KEKS.split(",")[0].split(":");
  const aesGcm = async (raw) => crypto.subtle.importKey("raw", raw, "AES-GCM", false, ["encrypt"]);
  const context = `keywarden/v1|${workspaceId}|${kind}|${version}`;
  const dataKey = crypto.getRandomValues(new Uint8Array(32));
  const nonce = crypto.getRandomValues(new Uint8Array(12));
  const ct = await crypto.subtle.encrypt({ name: "AES-GCM", iv: nonce, additionalData: new TextEncoder().encode(context) }, await aesGcm(dataKey), new TextEncoder().encode(plaintext));
  const wrapNonce = crypto.getRandomValues(new Uint8Array(12));
  const wrapped = await crypto.subtle.encrypt(
    { name: "AES-GCM", iv: wrapNonce, additionalData: new TextEncoder().encode(`${context}|kek=${kekId}`) },
    await aesGcm(base64ToBytes(kekBase64)),
    dataKey,
  );
  const dek = bytesToBase64([...wrapNonce, ...new Uint8Array(wrapped)]);
  return JSON.stringify({ v: 1, kek: kekId, dek, nonce: bytesToBase64(nonce), ct: bytesToBase64(ct) });
}

describe("encryption bound to each secret's storage name", () => {
  it("does not open a key retired by a removal under the next config of the same workspace, provider and version", async () => {
    const { key: owner, workspace } = await createWorkspace();
    const put = (apiKey) => call("PUT", "/v1/providers/openai", { token: owner, body: { api_key: apiKey, api_host: OPENAI_HOST } });
    expect((await put("sk-first-owner-key")).status).toBe(200);
    const first = await dbRow("SELECT blob_name FROM provider_configs WHERE workspace_id = ?", workspace.id);
    const retired = await env.SECRETS.get(first.blob_name);
    expect((await call("DELETE", "/v1/providers/openai", { token: owner })).status).toBe(200);
    const again = await put("sk-second-owner-key");
    expect(again.body).toMatchObject({ status: "valid", version: 1 });

    const second = await dbRow("SELECT blob_name FROM provider_configs WHERE workspace_id = ?", workspace.id);
    await env.SECRETS.put(second.blob_name, retired);
    const resolved = await call("POST", "/v1/resolve", { token: owner, body: { provider: "openai" } });
    expect(resolved.status, `the retired key opened: ${resolved.text}`).toBe(500);
    expect(resolved.body.error.code).toBe("internal");
  });

  it("keeps a provider key and a webhook secret sealed before names were bound working, and the cron's re-wrap binds them", async () => {
    const { key: owner, workspace } = await createWorkspace();
    const apiKey = "sk-sealed-long-ago";
    const legacyName = `pk/${workspace.id}/openai/1-Legacy01`;
    await env.SECRETS.put(legacyName, await sealUnbound(apiKey, workspace.id, "openai", 1));
    await env.DB.prepare(
      `INSERT INTO provider_configs (workspace_id, provider, api_host, config, key_hint, status, validated_at, checked_at, version, blob_name, kek_id, is_default, updated_at)
       VALUES (?1, 'openai', ?2, '{}', '...ago', 'valid', ?3, ?3, 1, ?4, 'k1', 1, ?3)`,
    )
      .bind(workspace.id, OPENAI_HOST, Date.now(), legacyName)
      .run();
    const whsec = `whsec_${bytesToBase64(crypto.getRandomValues(new Uint8Array(32)))}`;
    await env.DB.prepare("INSERT INTO webhook_secrets (workspace_id, version, sealed, kek_id, created_at, expires_at) VALUES (?1, 1, ?2, 'k1', ?3, NULL)")
      .bind(workspace.id, await sealUnbound(whsec, workspace.id, "webhook", 1), Date.now())
      .run();
    const works = async (when) => {
      const resolved = await call("POST", "/v1/resolve", { token: owner, body: { provider: "openai" } });
      expect(resolved.body, `resolve ${when}: ${resolved.text}`).toMatchObject({ mode: "byok", api_key: apiKey });
      const hook = await deliver(workspace.id, whsec, { type: "api_key.leaked", data: { tokens: [] } });
      expect(hook.status, `signed delivery ${when}: ${hook.text}`).toBe(200);
    };
    await works("before the re-wrap");

    await runScheduled();
    const config = await dbRow("SELECT blob_name FROM provider_configs WHERE workspace_id = ?", workspace.id);
    expect(config.blob_name).toMatch(new RegExp(`^pk/v2/${workspace.id}/openai/1-`));
    expect(JSON.parse(await env.SECRETS.get(config.blob_name)).v).toBe(2);
    const secret = await dbRow("SELECT sealed, sealed_name FROM webhook_secrets WHERE workspace_id = ?", workspace.id);
    expect(secret.sealed_name).toMatch(new RegExp(`^webhook/${workspace.id}/1-`));
    expect(JSON.parse(secret.sealed).v).toBe(2);
    await works("after the re-wrap");
  });
});
