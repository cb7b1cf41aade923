// Issue 14: GitHub's secret scanning partner protocol at POST /v1/leaks/github. The mock
// provider publishes two P-256 keys as GitHub does and signs bodies with them.
import { SELF, env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { call, createKey, createWorkspace, dbRow, dbRows, sha256Hex, unknownKey } from "./helpers.js";

const MOCK = env.MOCK_PROVIDER;

async function signed(body, keyId = "gh-key-1") {
  const response = await fetch(`${MOCK}/github/__sign?key=${keyId}`, { method: "POST", body });
  expect(response.status).toBe(200);
  return response.text();
}

async function keyListFetches() {
  const requests = await (await fetch(`${MOCK}/__requests`)).json();
  return requests.filter((request) => request.path === "/github/keys").length;
}

/** Posts `body` (a string, sent byte for byte) as GitHub does, signed by `keyId` unless given. */
async function report(body, { keyId = "gh-key-1", signature, headers } = {}) {
  const sent = {
    "content-type": "application/json",
    "github-public-key-identifier": keyId,
    "github-public-key-signature": signature ?? (await signed(body, keyId)),
    ...headers,
  };
  Object.keys(sent).forEach((name) => sent[name] === undefined && delete sent[name]);
  return call("POST", "/v1/leaks/github", { body, headers: sent });
}

describe("POST /v1/leaks/github", () => {
  it("revokes a live key reported in a report signed by GitHub, with no admin token", async () => {
    const { key: owner } = await createWorkspace();
    const leaked = await createKey(owner, { name: "leaked", capabilities: ["keys:read"] });
    expect((await call("GET", "/v1/me", { token: leaked.key })).status).toBe(200);
    const other = unknownKey();
    const body = JSON.stringify([
      { token: leaked.key, type: "keywarden_api_key", url: "https://github.com/octocat/Hello-World/blob/abc/.env", source: "content" },
      { token: other, type: "keywarden_api_key", url: "https://github.com/octocat/Hello-World/blob/abc/b.txt", source: "content" },
    ]);
    const response = await report(body);
    expect(response.status).toBe(200);
    expect(response.body).toEqual([
      { token_hash: await sha256Hex(leaked.key), token_type: "keywarden_api_key", label: "true_positive" },
      { token_hash: await sha256Hex(other), token_type: "keywarden_api_key", label: "false_positive" },
    ]);
    expect((await call("GET", "/v1/me", { token: leaked.key })).status, "the next request with it").toBe(401);
    const audited = await dbRow("SELECT detail FROM audit_events WHERE action = 'key.leaked' AND target = ? AND workspace_id IS NOT NULL", leaked.id);
    const detail = JSON.parse(audited.detail);
    expect(detail).toMatchObject({ reported_by: "github", url: "https://github.com/octocat/Hello-World/blob/abc/.env", source: "content" });
    expect(audited.detail).not.toContain(leaked.key);
  });

  it("answers a repeated report of the same key true_positive again, without revoking twice", async () => {
    const { key: owner } = await createWorkspace();
    const leaked = await createKey(owner, { name: "twice", capabilities: ["keys:read"] });
    const body = JSON.stringify([{ token: leaked.key, type: "keywarden_api_key", url: "https://github.com/x/y" }]);
    expect((await report(body)).body[0].label).toBe("true_positive");
    expect((await report(body)).body[0].label).toBe("true_positive");
  });

  it("refuses a tampered body with 401 invalid_signature and revokes nothing", async () => {
    const { key: owner } = await createWorkspace();
    const target = await createKey(owner, { name: "kept", capabilities: ["keys:read"] });
    const body = JSON.stringify([{ token: target.key, type: "keywarden_api_key", url: "https://github.com/x/y" }]);
    const signature = await signed(body);
    const response = await report(body.replace("x/y", "x/z"), { signature });
    expect(response.status).toBe(401);
    expect(response.body.error.code).toBe("invalid_signature");
    expect((await call("GET", "/v1/me", { token: target.key })).status).toBe(200);
  });

  it("answers 400 invalid_webhook when a signature header is missing", async () => {
    const body = JSON.stringify([{ token: unknownKey() }]);
    for (const missing of ["github-public-key-identifier", "github-public-key-signature"]) {
      const response = await report(body, { headers: { [missing]: undefined } });
      expect(response.status, missing).toBe(400);
      expect(response.body.error.code).toBe("invalid_webhook");
    }
  });

  it("fetches the keys again once for an identifier it does not know, then accepts or refuses", async () => {
    const body = JSON.stringify([{ token: unknownKey(), type: "keywarden_api_key" }]);
    expect((await report(body)).status, "gh-key-1 is published").toBe(200);
    await fetch(`${MOCK}/github/__rotate`, { method: "POST" });
    const before = await keyListFetches();
    const rotated = await report(body, { keyId: "gh-key-2" });
    expect(rotated.status, "the new key after one refetch").toBe(200);
    expect(await keyListFetches()).toBe(before + 1);
    expect((await report(body, { keyId: "gh-key-2" })).status).toBe(200);
    expect(await keyListFetches(), "known now: no fetch").toBe(before + 1);
    const unknown = await report(body, { keyId: "gh-key-9", signature: await signed(body, "gh-key-1") });
    expect(unknown.status).toBe(401);
    expect(unknown.body.error.code).toBe("invalid_signature");
    expect(await keyListFetches(), "one refetch for the unknown identifier, no more").toBe(before + 2);
  });

  it("refuses more than 1,000 tokens with 400 invalid_request", async () => {
    const body = JSON.stringify(Array.from({ length: 1001 }, () => ({ token: "x" })));
    const response = await report(body);
    expect(response.status).toBe(400);
    expect(response.body.error).toMatchObject({ code: "invalid_request", field: "body" });
  });

  it("labels the operator's reports with token_type too", async () => {
    const response = await call("POST", "/v1/leaks", {
      token: "kwadmin_test_0123456789abcdefghijklmnopqrstuvwxyz",
      body: [{ token: unknownKey(), type: "keywarden_api_key" }, { token: "not a key" }],
    });
    expect(response.status).toBe(200);
    expect(response.body.map((label) => label.token_type)).toEqual(["keywarden_api_key", null]);
  });

  it("is not reachable with another method", async () => {
    const response = await SELF.fetch("http://keywarden.test/v1/leaks/github", { method: "GET" });
    expect(response.status).toBe(405);
  });
});

describe("the workspace's leak policy", () => {
  async function reportedUnder(policy) {
    const { workspace, key: owner } = await createWorkspace();
    const endpoint = await call("PUT", "/v1/webhooks/endpoint", { token: owner, body: { url: `${MOCK}/receiver/ok/leak-policy` } });
    expect(endpoint.status).toBe(200);
    if (policy) {
      const set = await call("PATCH", `/v1/workspaces/${workspace.id}`, { token: "kwadmin_test_0123456789abcdefghijklmnopqrstuvwxyz", body: { leak_policy: policy } });
      expect(set.status).toBe(200);
      expect(set.body.leak_policy).toEqual({ grace_seconds: 0, ...policy });
    }
    const leaked = await createKey(owner, { name: "leaky", capabilities: ["keys:read"] });
    const body = JSON.stringify([{ token: leaked.key, type: "keywarden_api_key", url: "https://github.com/o/r/blob/x/.env", source: "content" }]);
    const response = await report(body);
    expect(response.status).toBe(200);
    expect(response.body[0].label, "a live key of ours, whatever the policy").toBe("true_positive");
    const notices = await dbRows("SELECT event_type, payload FROM outbox WHERE workspace_id = ? AND event_type IN ('api_key.leaked', 'api_key.revoked')", workspace.id);
    return { workspace, leaked, notices: notices.map((row) => ({ type: row.event_type, data: JSON.parse(row.payload).data })) };
  }

  it("revokes at once by default and says so in api_key.leaked and api_key.revoked", async () => {
    const { leaked, notices } = await reportedUnder(null);
    expect((await call("GET", "/v1/me", { token: leaked.key })).status).toBe(401);
    expect(notices.map((n) => n.type).sort()).toEqual(["api_key.leaked", "api_key.revoked"]);
    const notice = notices.find((n) => n.type === "api_key.leaked").data;
    expect(notice).toMatchObject({ key_id: leaked.id, name: "leaky", url: "https://github.com/o/r/blob/x/.env", source: "content", action: "revoke" });
  });

  it("keeps the key working for the grace with expire, and says when it stops", async () => {
    const { leaked, notices } = await reportedUnder({ action: "expire", grace_seconds: 3600 });
    expect((await call("GET", "/v1/me", { token: leaked.key })).status, "within the grace").toBe(200);
    const stored = await dbRow("SELECT revoked_at, revoked_reason FROM api_keys WHERE id = ?", leaked.id);
    expect(stored.revoked_reason).toBe("leaked");
    expect(stored.revoked_at).toBeGreaterThan(Date.now() + 3500 * 1000);
    expect(notices.map((n) => n.type)).toEqual(["api_key.leaked"]);
    expect(notices[0].data.action).toBe("expire");
    expect(Date.parse(notices[0].data.expires_at)).toBe(Math.floor(stored.revoked_at / 1000) * 1000);
  });

  it("only tells with notify: the key keeps working", async () => {
    const { leaked, notices } = await reportedUnder({ action: "notify" });
    expect((await call("GET", "/v1/me", { token: leaked.key })).status).toBe(200);
    expect((await dbRow("SELECT revoked_at FROM api_keys WHERE id = ?", leaked.id)).revoked_at).toBeNull();
    expect(notices).toEqual([{ type: "api_key.leaked", data: expect.objectContaining({ action: "notify", expires_at: null }) }]);
  });

  it("refuses a malformed policy with 400 naming the field", async () => {
    const { workspace } = await createWorkspace();
    const cases = [
      [{ action: "explode" }, "leak_policy.action"],
      [{ action: "expire" }, "leak_policy.grace_seconds"],
      [{ action: "expire", grace_seconds: 86401 }, "leak_policy.grace_seconds"],
      [{ action: "revoke", grace_seconds: 10 }, "leak_policy.grace_seconds"],
      [{ grace_seconds: 10 }, "leak_policy.action"],
      [{ action: "notify", colour: "red" }, "leak_policy.colour"],
    ];
    for (const [policy, field] of cases) {
      const response = await call("PATCH", `/v1/workspaces/${workspace.id}`, { token: "kwadmin_test_0123456789abcdefghijklmnopqrstuvwxyz", body: { leak_policy: policy } });
      expect(response.status, JSON.stringify(policy)).toBe(400);
      expect(response.body.error.field, JSON.stringify(policy)).toBe(field);
    }
  });
});
