// Security review findings (issue 10): no key gains what it was not given, and no request held
// open outlives the revocation of its key or a switch of its workspace to read-only.
import { SELF, env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { admin, call, createKey, createWorkspace, dbRow, dbRows, randomIp, sleep } from "./helpers.js";

const MOCK = env.MOCK_PROVIDER;

/** A key with the capabilities given, held by a script rather than the owner. */
const scriptKey = (owner, capabilities, fields = {}) => createKey(owner, { name: "script", capabilities, ...fields });

const stillWorks = async (key) => (await call("GET", "/v1/me", { token: key })).status === 200;

describe("managing another key needs every capability it holds", () => {
  it("a keys:write key cannot reroll the owner key", async () => {
    const { key: owner, ownerKey } = await createWorkspace();
    const script = await scriptKey(owner, ["keys:read", "keys:write"]);
    const listed = await call("GET", "/v1/keys", { token: script.key });
    expect(listed.body.items.map((k) => k.id)).toContain(ownerKey.id);
    const response = await call("POST", `/v1/keys/${ownerKey.id}/reroll`, { token: script.key, body: { grace_seconds: 0 } });
    expect(response.status).toBe(403);
    expect(response.body.error).toMatchObject({ code: "capability_escalation", capability: "*" });
    expect(await stillWorks(owner)).toBe(true);
    expect(await dbRow("SELECT COUNT(*) AS n FROM api_keys WHERE rerolled_from = ?", ownerKey.id)).toEqual({ n: 0 });
  });

  it("a keys:write key cannot revoke the owner key, on /v1 or Le Bureau's route", async () => {
    const { key: owner, ownerKey } = await createWorkspace();
    const script = await scriptKey(owner, ["keys:read", "keys:write"]);
    for (const path of [`/v1/keys/${ownerKey.id}`, `/api/auth/api-keys/${ownerKey.id}`]) {
      const response = await call("DELETE", path, { token: script.key });
      expect(response.status, path).toBe(403);
      expect(response.body.error.code, path).toBe("capability_escalation");
    }
    expect(await stillWorks(owner)).toBe(true);
    expect(await dbRow("SELECT revoked_at FROM api_keys WHERE id = ?", ownerKey.id)).toEqual({ revoked_at: null });
  });

  it("a keys:write key still rerolls and revokes keys no wider than itself", async () => {
    const { key: owner } = await createWorkspace();
    const script = await scriptKey(owner, ["keys:read", "keys:write"]);
    const reader = await createKey(owner, { name: "reader", capabilities: ["keys:read"] });
    const rerolled = await call("POST", `/v1/keys/${reader.id}/reroll`, { token: script.key, body: {} });
    expect(rerolled.status).toBe(201);
    const revoked = await call("DELETE", `/v1/keys/${rerolled.body.id}`, { token: script.key });
    expect(revoked.status).toBe(200);
  });
});

describe("a key creates and rerolls only keys no wider than itself", () => {
  const bounded = (owner) =>
    scriptKey(owner, ["keys:read", "keys:write"], {
      expires_in: 3600,
      rate_limit: { limit: 20, window_seconds: 3600 },
      subject: { role: "user" },
    });

  it("a child inherits the expiry, rate limit and subject its parent omits", async () => {
    const { key: owner } = await createWorkspace();
    const parent = await bounded(owner);
    const child = await call("POST", "/v1/keys", { token: parent.key, body: { name: "child", capabilities: ["keys:read"] } });
    expect(child.status).toBe(201);
    expect(child.body).toMatchObject({ expires_at: parent.expires_at, rate_limit: { limit: 20, window_seconds: 3600 }, subject: { role: "user" } });
    const stored = await dbRow("SELECT expires_at, rate_limit, rate_window_seconds, subject FROM api_keys WHERE id = ?", child.body.id);
    expect(stored).toMatchObject({ rate_limit: 20, rate_window_seconds: 3600, subject: '{"role":"user"}' });
  });

  for (const [field, body] of [
    ["expires_at", { expires_in: 7200 }],
    ["rate_limit", { rate_limit: { limit: 1000, window_seconds: 3600 } }],
    ["rate_limit", { rate_limit: { limit: 20, window_seconds: 60 } }],
    ["subject", { subject: { role: "admin" } }],
  ]) {
    it(`a child may not have a wider ${field} (${JSON.stringify(body)})`, async () => {
      const { key: owner, workspace } = await createWorkspace();
      const parent = await bounded(owner);
      const name = `escaping ${field}`;
      const response = await call("POST", "/v1/keys", { token: parent.key, body: { name, capabilities: ["keys:read"], ...body } });
      expect(response.status).toBe(403);
      expect(response.body.error).toMatchObject({ code: "capability_escalation", field });
      expect(await dbRow("SELECT COUNT(*) AS n FROM api_keys WHERE workspace_id = ? AND name = ?", workspace.id, name)).toEqual({ n: 0 });
    });
  }

  it("a key in its reroll grace period cannot make keys that outlive the grace", async () => {
    const { key: owner } = await createWorkspace();
    const rotating = await scriptKey(owner, ["keys:read", "keys:write"]);
    const rerolled = await call("POST", `/v1/keys/${rotating.id}/reroll`, { token: owner, body: { grace_seconds: 3600 } });
    expect(rerolled.status).toBe(201);
    const graceEnd = (await call("GET", `/v1/keys/${rotating.id}`, { token: owner })).body.revoked_at;
    const unbounded = await call("POST", "/v1/keys", { token: rotating.key, body: { name: "escape", capabilities: ["keys:read"], expires_in: 7200 } });
    expect(unbounded.status).toBe(403);
    expect(unbounded.body.error).toMatchObject({ code: "capability_escalation", field: "expires_at" });
    const inherited = await call("POST", "/v1/keys", { token: rotating.key, body: { name: "bounded", capabilities: ["keys:read"] } });
    expect(inherited.status).toBe(201);
    expect(inherited.body.expires_at).toBe(graceEnd);
    const selfReroll = await call("POST", `/v1/keys/${rotating.id}/reroll`, { token: rotating.key, body: {} });
    expect(selfReroll.status).toBe(403);
    expect(selfReroll.body.error).toMatchObject({ code: "capability_escalation", field: "expires_at" });
  });

  it("a bounded key cannot reroll an unbounded one into a key it could not create", async () => {
    const { key: owner } = await createWorkspace();
    const parent = await bounded(owner);
    const unbounded = await createKey(owner, { name: "unbounded", capabilities: ["keys:read"] });
    const response = await call("POST", `/v1/keys/${unbounded.id}/reroll`, { token: parent.key, body: {} });
    expect(response.status).toBe(403);
    expect(response.body.error).toMatchObject({ code: "capability_escalation", field: "expires_at" });
    expect(await dbRow("SELECT COUNT(*) AS n FROM api_keys WHERE rerolled_from = ?", unbounded.id)).toEqual({ n: 0 });
  });
});

/**
 * Sends a request's headers now and its body only when `send` is called, as a slow or
 * malicious client would. `authenticated()` resolves once the Worker has authenticated it:
 * the caller key has a rate limit, so its workspace's key authority marks its counter when
 * the request is checked.
 */
function holdRequest(method, path, callerKey) {
  let release;
  const body = new ReadableStream({
    start(controller) {
      release = (json) => {
        controller.enqueue(new TextEncoder().encode(JSON.stringify(json)));
        controller.close();
      };
    },
  });
  const headers = { authorization: `Bearer ${callerKey.key}`, "content-type": "application/json", "cf-connecting-ip": randomIp() };
  const pending = SELF.fetch(`http://keywarden.test${path}`, { method, headers, body });
  return {
    async authenticated() {
      const authority = env.AUTHORITY.get(env.AUTHORITY.idFromName(`1/${callerKey.workspaceId}/0of1`));
      for (let i = 0; i < 200; i++) {
        const rows = await runInDurableObject(authority, (_instance, state) =>
          state.storage.sql.exec("SELECT marked FROM counters WHERE key_id = ?", callerKey.id).toArray(),
        );
        if (rows.length > 0) return;
        await sleep(25);
      }
      throw new Error("the held request was never authenticated");
    },
    async send(json) {
      release(json);
      const response = await pending;
      const text = await response.text();
      return { status: response.status, body: JSON.parse(text), text };
    },
  };
}

/** A workspace with a `*` key whose requests can be seen arriving (it has a rate limit). */
async function heldSetup() {
  const { key: owner, workspace } = await createWorkspace();
  const caller = await createKey(owner, { name: "held", capabilities: ["*"], rate_limit: { limit: 1000, window_seconds: 3600 } });
  return { owner, workspace, caller: { ...caller, workspaceId: workspace.id } };
}

const revoke = (owner, caller) => call("DELETE", `/v1/keys/${caller.id}`, { token: owner });
const makeReadOnly = (workspace) => admin("PATCH", `/v1/workspaces/${workspace.id}`, { body: { read_only: true } });

describe("a request held open does not outlive the revocation of its key", () => {
  it("POST /v1/keys whose body arrives after the revoke creates nothing", async () => {
    const { owner, workspace, caller } = await heldSetup();
    const held = holdRequest("POST", "/v1/keys", caller);
    await held.authenticated();
    expect((await revoke(owner, caller)).status).toBe(200);
    const response = await held.send({ name: "late key", capabilities: ["*"] });
    expect(response.status).toBe(401);
    expect(response.body.error.code).toBe("unauthorized");
    expect(response.text).not.toMatch(/kw_live_/);
    expect(await dbRow("SELECT COUNT(*) AS n FROM api_keys WHERE workspace_id = ? AND name = 'late key'", workspace.id)).toEqual({ n: 0 });
  });

  it("POST /v1/keys/{id}/credits whose body arrives after the revoke changes nothing", async () => {
    const { owner, workspace, caller } = await heldSetup();
    const metered = await createKey(owner, { credits: { remaining: 5 } });
    const held = holdRequest("POST", `/v1/keys/${metered.id}/credits`, caller);
    await held.authenticated();
    expect((await revoke(owner, caller)).status).toBe(200);
    const response = await held.send({ set: 1000 });
    expect(response.status).toBe(401);
    expect(response.body.error.code).toBe("unauthorized");
    expect((await call("GET", `/v1/keys/${metered.id}`, { token: owner })).body.credits.remaining).toBe(5);
    expect(await dbRows("SELECT id FROM audit_events WHERE workspace_id = ? AND action = 'key.credits_changed'", workspace.id)).toEqual([]);
  });

  it("a self-reroll whose body arrives after the revoke leaves no successor", async () => {
    const { owner, caller } = await heldSetup();
    const held = holdRequest("POST", `/v1/keys/${caller.id}/reroll`, caller);
    await held.authenticated();
    expect((await revoke(owner, caller)).status).toBe(200);
    const response = await held.send({ grace_seconds: 600 });
    expect(response.status).toBe(401);
    expect(response.text).not.toMatch(/kw_live_/);
    expect(await dbRow("SELECT COUNT(*) AS n FROM api_keys WHERE rerolled_from = ?", caller.id)).toEqual({ n: 0 });
  });

  it("POST /v1/webhooks/secret whose body arrives after the revoke issues no secret", async () => {
    const { owner, workspace, caller } = await heldSetup();
    const held = holdRequest("POST", "/v1/webhooks/secret", caller);
    await held.authenticated();
    expect((await revoke(owner, caller)).status).toBe(200);
    const response = await held.send({ grace_seconds: 0 });
    expect(response.status).toBe(401);
    expect(response.text).not.toMatch(/whsec_/);
    expect(await dbRow("SELECT COUNT(*) AS n FROM webhook_secrets WHERE workspace_id = ?", workspace.id)).toEqual({ n: 0 });
  });

  it("PUT /v1/webhooks/endpoint whose body arrives after the revoke issues no secret", async () => {
    const { owner, workspace, caller } = await heldSetup();
    const held = holdRequest("PUT", "/v1/webhooks/endpoint", caller);
    await held.authenticated();
    expect((await revoke(owner, caller)).status).toBe(200);
    const response = await held.send({ url: `${MOCK}/hooks` });
    expect(response.status).toBe(401);
    expect(response.text).not.toMatch(/whsec_/);
    expect(await dbRow("SELECT COUNT(*) AS n FROM notification_endpoints WHERE workspace_id = ?", workspace.id)).toEqual({ n: 0 });
  });

  it("POST /v1/resolve whose body arrives after the revoke hands out no provider key", async () => {
    const { owner, workspace, caller } = await heldSetup();
    const apiKey = `sk-good-held-${Date.now().toString(36)}`;
    const configured = await call("PUT", "/v1/providers/openai", { token: owner, body: { api_key: apiKey, api_host: `${MOCK}/openai/v1` } });
    expect(configured.status).toBe(200);
    const held = holdRequest("POST", "/v1/resolve", caller);
    await held.authenticated();
    expect((await revoke(owner, caller)).status).toBe(200);
    const response = await held.send({ provider: "openai" });
    expect(response.status).toBe(401);
    expect(response.text).not.toContain(apiKey);
    await sleep(100); // the audit entry of a resolve is written after the response
    const resolved = await dbRows("SELECT * FROM audit_events WHERE workspace_id = ? AND action = 'secret.resolved'", workspace.id);
    expect(resolved).toEqual([]);
  });

  it("POST /v1/keys whose body arrives after the workspace became read-only creates nothing", async () => {
    const { workspace, caller } = await heldSetup();
    const held = holdRequest("POST", "/v1/keys", caller);
    await held.authenticated();
    expect((await makeReadOnly(workspace)).status).toBe(200);
    const response = await held.send({ name: "read-only late key" });
    expect(response.status).toBe(403);
    expect(response.body.error.code).toBe("workspace_read_only");
    expect(await dbRow("SELECT COUNT(*) AS n FROM api_keys WHERE workspace_id = ? AND name = 'read-only late key'", workspace.id)).toEqual({
      n: 0,
    });
  });

  it("POST /v1/keys/{id}/credits whose body arrives after the workspace became read-only changes nothing", async () => {
    const { owner, workspace, caller } = await heldSetup();
    const metered = await createKey(owner, { credits: { remaining: 5 } });
    const held = holdRequest("POST", `/v1/keys/${metered.id}/credits`, caller);
    await held.authenticated();
    expect((await makeReadOnly(workspace)).status).toBe(200);
    const response = await held.send({ add: 100 });
    expect(response.status).toBe(403);
    expect(response.body.error.code).toBe("workspace_read_only");
    expect((await call("GET", `/v1/keys/${metered.id}`, { token: owner })).body.credits.remaining).toBe(5);
    expect(await dbRows("SELECT id FROM audit_events WHERE workspace_id = ? AND action = 'key.credits_changed'", workspace.id)).toEqual([]);
  });

  it("PUT /v1/providers whose body arrives after the workspace became read-only stores nothing", async () => {
    const { workspace, caller } = await heldSetup();
    const held = holdRequest("PUT", "/v1/providers/openai", caller);
    await held.authenticated();
    expect((await makeReadOnly(workspace)).status).toBe(200);
    const response = await held.send({ api_key: `sk-good-ro-${Date.now().toString(36)}`, api_host: `${MOCK}/openai/v1` });
    expect(response.status).toBe(403);
    expect(response.body.error.code).toBe("workspace_read_only");
    expect(await dbRows("SELECT * FROM provider_configs WHERE workspace_id = ?", workspace.id)).toEqual([]);
  });
});

describe("a reroll racing a revoke of the same key", () => {
  it("never leaves a live successor of a key the revoke revoked", async () => {
    const { key: owner } = await createWorkspace();
    const outcomes = { rerollWon: 0, revokeWon: 0 };
    for (let round = 0; round < 20; round++) {
      const target = await createKey(owner, { name: `race ${round}`, capabilities: ["keys:write"] });
      const reroll = call("POST", `/v1/keys/${target.id}/reroll`, { token: target.key, body: { grace_seconds: 0 } });
      await sleep(round % 4);
      const [rerolled, revoked] = await Promise.all([reroll, call("DELETE", `/v1/keys/${target.id}`, { token: owner })]);
      expect(revoked.status, `round ${round}`).toBe(200);
      const successors = await dbRows("SELECT id FROM api_keys WHERE rerolled_from = ?", target.id);
      const revokedByDelete = await dbRows("SELECT id FROM audit_events WHERE action = 'key.revoked' AND target = ?", target.id);
      // Either the reroll committed first (it ended the key; the delete found it revoked), or
      // the revoke did (the reroll is refused): never both a revocation and a successor.
      if (rerolled.status === 201) {
        outcomes.rerollWon += 1;
        expect(successors.map((s) => s.id), `round ${round}`).toEqual([rerolled.body.id]);
        expect(revokedByDelete, `round ${round}: the delete revoked a key that already had a successor`).toEqual([]);
      } else {
        outcomes.revokeWon += 1;
        expect([401, 409], `round ${round}`).toContain(rerolled.status);
        expect(successors, `round ${round}`).toEqual([]);
      }
    }
    expect(outcomes.rerollWon + outcomes.revokeWon).toBe(20);
  });
});
