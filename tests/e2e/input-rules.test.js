// Input rules of security issue 10: key hints of short keys, IP literals of special-purpose
// ranges, expiry times past the year 9999, invisible characters in names, and unknown field
// names echoed back in errors.
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { admin, call, createWorkspace, dbRow, dbRows } from "./helpers.js";

const MOCK = env.MOCK_PROVIDER;
let counter = 0;
const unique = (prefix) => `${prefix}${Date.now().toString(36)}${(counter += 1)}`;

async function mockRequests(key) {
  const all = await (await fetch(`${MOCK}/__requests`)).json();
  return all.filter((r) => JSON.stringify(r.headers).includes(key));
}

const keysOf = (workspaceId) => dbRows("SELECT name FROM api_keys WHERE workspace_id = ?", workspaceId);

describe("key_hint", () => {
  it("shows no character of a provider key shorter than 16 characters, in the answer or in D1", async () => {
    const { key: owner, workspace } = await createWorkspace();
    const apiKey = `sk-${(counter += 1)}${Date.now() % 1000}`.slice(0, 9);
    const response = await call("PUT", "/v1/providers/openai", { token: owner, body: { api_key: apiKey, api_host: `${MOCK}/openai/v1` } });
    expect(response.status, response.text).toBe(200);
    expect(response.body.key_hint, `a ${apiKey.length}-character key`).toBe("...");
    const row = await dbRow("SELECT key_hint FROM provider_configs WHERE workspace_id = ? AND provider = 'openai'", workspace.id);
    expect(row.key_hint).toBe("...");
    const audit = await dbRow("SELECT detail FROM audit_events WHERE workspace_id = ? AND action = 'provider.configured'", workspace.id);
    expect(JSON.parse(audit.detail).key_hint).toBe("...");
  });
});

describe("the host policy refuses IP literals of special-purpose ranges", () => {
  const literals = ["https://[::ffff:0:7f00:1]", "https://[64:ff9b:1::a9fe:a9fe]", "https://[fec0::1]"];

  for (const literal of literals) {
    it(`refuses the provider host ${literal}, storing nothing and calling no one`, async () => {
      const { key: owner, workspace } = await createWorkspace();
      const apiKey = unique("sk-proj-hostpolicy-");
      const response = await call("PUT", "/v1/providers/openai", { token: owner, body: { api_key: apiKey, api_host: `${literal}/v1` } });
      expect(response.status, response.text).toBe(400);
      expect(response.body.error).toMatchObject({ code: "invalid_host", field: "api_host", message: expect.stringContaining("special-purpose") });
      expect(await dbRows("SELECT provider FROM provider_configs WHERE workspace_id = ?", workspace.id)).toEqual([]);
      expect(await mockRequests(apiKey)).toEqual([]);
    });

    it(`refuses the notification endpoint ${literal} and stores none`, async () => {
      const { key: owner, workspace } = await createWorkspace();
      const response = await call("PUT", "/v1/webhooks/endpoint", { token: owner, body: { url: `${literal}/hook` } });
      expect(response.status, response.text).toBe(400);
      expect(response.body.error).toMatchObject({ code: "invalid_host", field: "url", message: expect.stringContaining("special-purpose") });
      expect(await dbRow("SELECT url FROM notification_endpoints WHERE workspace_id = ?", workspace.id)).toBeNull();
      expect((await call("GET", "/v1/webhooks/endpoint", { token: owner })).status).toBe(404);
    });
  }

  it("re-validation does not contact a stored host the policy now refuses, and keeps the status", async () => {
    const { key: owner, workspace } = await createWorkspace();
    const apiKey = unique("sk-proj-stalehost-");
    const configured = await call("PUT", "/v1/providers/openai", { token: owner, body: { api_key: apiKey, api_host: `${MOCK}/openai/v1` } });
    expect(configured.status, configured.text).toBe(200);
    // As if stored before the policy knew site-local addresses.
    await env.DB.prepare("UPDATE provider_configs SET api_host = 'https://[fec0::1]/v1' WHERE workspace_id = ?").bind(workspace.id).run();

    const validated = await call("POST", "/v1/providers/openai/validate", { token: owner });

    expect(validated.status, validated.text).toBe(200);
    expect(validated.body).toMatchObject({ status: "valid", validated_at: configured.body.validated_at });
    expect(validated.body.error).toMatchObject({ code: "invalid_host", field: "api_host", message: expect.stringContaining("fec0::/10") });
    const row = await dbRow("SELECT status, validated_at FROM provider_configs WHERE workspace_id = ?", workspace.id);
    expect(row.status).toBe("valid");
    expect(await mockRequests(apiKey), "only configure's own validation").toHaveLength(1);
  });
});

describe("expires_at", () => {
  it("refuses a time past 9999-12-31T23:59:59Z in UTC and stores no key", async () => {
    const { key: owner, workspace } = await createWorkspace();
    const response = await call("POST", "/v1/keys", { token: owner, body: { name: "far future", expires_at: "9999-12-31T23:59:59-23:00" } });
    expect(response.status, response.text).toBe(400);
    expect(response.body.error).toMatchObject({ code: "invalid_request", field: "expires_at" });
    expect((await keysOf(workspace.id)).map((k) => k.name), "only the owner key").toHaveLength(1);
  });
});

describe("names refuse bidi controls and invisible characters", () => {
  const names = ["Owner\u200bkey", "Owner\u200dkey", "\ufeffOwner key", "invoice\u202egnp.exe", "CI\u2066 prod\u2069", "soft\u00adhyphen", "Owner\u180ekey"];

  it("for keys, storing none", async () => {
    const { key: owner, workspace } = await createWorkspace();
    for (const name of names) {
      const response = await call("POST", "/v1/keys", { token: owner, body: { name } });
      expect(response.status, JSON.stringify(name)).toBe(400);
      expect(response.body.error).toMatchObject({ code: "invalid_request", field: "name" });
    }
    expect(await keysOf(workspace.id), "only the owner key").toHaveLength(1);
  });

  it("for workspaces, created or renamed, storing none", async () => {
    const { workspace } = await createWorkspace();
    for (const name of names) {
      const created = await admin("POST", "/v1/workspaces", { body: { name } });
      expect(created.status, JSON.stringify(name)).toBe(400);
      expect(created.body.error).toMatchObject({ code: "invalid_request", field: "name" });
      expect(await dbRow("SELECT id FROM workspaces WHERE name = ?", name)).toBeNull();
      const renamed = await admin("PATCH", `/v1/workspaces/${workspace.id}`, { body: { name } });
      expect(renamed.status, JSON.stringify(name)).toBe(400);
      expect(renamed.body.error).toMatchObject({ code: "invalid_request", field: "name" });
    }
    expect((await dbRow("SELECT name FROM workspaces WHERE id = ?", workspace.id)).name).toBe(workspace.name);
  });
});

describe("an unknown field's name is echoed by its first 64 characters only", () => {
  const long = "u".repeat(20_000);
  const cut = `${"u".repeat(64)}…`;
  const cases = [
    ["a key's field", "POST", "/v1/keys", () => ({ name: "x", [long]: 1 }), cut],
    ["a field of rate_limit", "POST", "/v1/keys", () => ({ name: "x", rate_limit: { limit: 1, window_seconds: 60, [long]: 1 } }), `rate_limit.${cut}`],
    ["a provider setting", "PUT", "/v1/providers/openai", () => ({ api_key: "sk-proj-echo-0123456789", api_host: `${MOCK}/openai/v1`, config: { [long]: "x" } }), `config.${cut}`],
  ];
  for (const [what, method, path, body, field] of cases) {
    it(`for ${what}`, async () => {
      const { key: owner, workspace } = await createWorkspace();
      const response = await call(method, path, { token: owner, body: body() });
      expect(response.status, response.text.slice(0, 300)).toBe(400);
      expect(response.body.error.code).toBe("invalid_request");
      expect(response.body.error.field).toBe(field);
      expect(response.body.error.message.startsWith(`\`${field}\` `), response.body.error.message.slice(0, 300)).toBe(true);
      expect(response.text.length, "the answer does not carry the name back").toBeLessThan(500);
      expect(await keysOf(workspace.id), "nothing stored").toHaveLength(1);
      expect(await dbRows("SELECT provider FROM provider_configs WHERE workspace_id = ?", workspace.id)).toEqual([]);
    });
  }

  it("for a field of a leak report, named by its index", async () => {
    const response = await admin("POST", "/v1/leaks", { body: [{ token: "kw_live_nothing" }, { token: "kw_live_nothing", [long]: 1 }] });
    expect(response.status, response.text.slice(0, 300)).toBe(400);
    expect(response.body.error).toMatchObject({ code: "invalid_request", field: `[1].${cut}` });
    expect(response.text.length, "the answer does not carry the name back").toBeLessThan(500);
  });
});
