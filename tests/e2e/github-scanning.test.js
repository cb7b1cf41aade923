// Issue 14: GitHub's secret scanning partner protocol at POST /v1/leaks/github. The mock
// provider publishes two P-256 keys as GitHub does and signs bodies with them.
import { SELF, env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { call, createKey, createWorkspace, dbRow, sha256Hex, unknownKey } from "./helpers.js";

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
