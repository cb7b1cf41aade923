// Issue 14: rotation that can be retried. Idempotency-Key on POST /v1/keys, reroll and
// POST /v1/workspaces, and a key rerolled only once.
import { describe, expect, it } from "vitest";
import { admin, call, createKey, createWorkspace, dbRow, dbRows } from "./helpers.js";

let counter = 0;
const fresh = (name) => `${name}-${Date.now()}-${(counter += 1)}`;

describe("Idempotency-Key", () => {
  it("answers the first response again, plaintext included, for the same key and body", async () => {
    const { workspace, key: owner } = await createWorkspace();
    const idem = fresh("create");
    const body = { name: "ci", capabilities: ["keys:read"] };
    const first = await call("POST", "/v1/keys", { token: owner, body, headers: { "idempotency-key": idem } });
    expect(first.status).toBe(201);
    expect(first.headers.get("idempotent-replayed")).toBeNull();
    const again = await call("POST", "/v1/keys", { token: owner, body: { capabilities: ["keys:read"], name: "ci" }, headers: { "idempotency-key": idem } });
    expect(again.status).toBe(201);
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    expect(again.body).toEqual(first.body);
    expect((await dbRow("SELECT COUNT(*) AS n FROM api_keys WHERE workspace_id = ? AND name = 'ci'", workspace.id)).n, "one key minted").toBe(1);
    const stored = await dbRows("SELECT sealed FROM idempotency_keys WHERE idem_key = ?", idem);
    expect(stored).toHaveLength(1);
    expect(stored[0].sealed, "the stored response holds the plaintext only sealed").not.toContain(first.body.key);
  });

  it("answers 409 idempotency_conflict for the same key with another body, and mints nothing", async () => {
    const { workspace, key: owner } = await createWorkspace();
    const idem = fresh("conflict");
    expect((await call("POST", "/v1/keys", { token: owner, body: { name: "one" }, headers: { "idempotency-key": idem } })).status).toBe(201);
    const other = await call("POST", "/v1/keys", { token: owner, body: { name: "two" }, headers: { "idempotency-key": idem } });
    expect(other.status).toBe(409);
    expect(other.body.error.code).toBe("idempotency_conflict");
    expect((await dbRow("SELECT COUNT(*) AS n FROM api_keys WHERE workspace_id = ? AND name = 'two'", workspace.id)).n).toBe(0);
  });

  it("does not remember a failed request, so its retry runs afresh", async () => {
    const { key: owner } = await createWorkspace();
    const idem = fresh("failed");
    const bad = await call("POST", "/v1/keys", { token: owner, body: { name: "x", capabilities: ["Not A Capability"] }, headers: { "idempotency-key": idem } });
    expect(bad.status).toBe(400);
    expect((await dbRows("SELECT 1 FROM idempotency_keys WHERE idem_key = ?", idem))).toHaveLength(0);
  });

  it("refuses a malformed Idempotency-Key with 400", async () => {
    const { key: owner } = await createWorkspace();
    const response = await call("POST", "/v1/keys", { token: owner, body: { name: "x" }, headers: { "idempotency-key": "x".repeat(256) } });
    expect(response.status).toBe(400);
    expect(response.body.error).toMatchObject({ code: "invalid_request", field: "Idempotency-Key" });
  });

  it("replays a reroll, successor key included, and makes one successor", async () => {
    const { key: owner } = await createWorkspace();
    const old = await createKey(owner, { name: "rolled", capabilities: ["keys:read"] });
    const idem = fresh("reroll");
    const first = await call("POST", `/v1/keys/${old.id}/reroll`, { token: owner, body: { grace_seconds: 60 }, headers: { "idempotency-key": idem } });
    expect(first.status).toBe(201);
    const again = await call("POST", `/v1/keys/${old.id}/reroll`, { token: owner, body: { grace_seconds: 60 }, headers: { "idempotency-key": idem } });
    expect(again.status).toBe(201);
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    expect(again.body.key).toBe(first.body.key);
    expect((await dbRow("SELECT COUNT(*) AS n FROM api_keys WHERE rerolled_from = ?", old.id)).n).toBe(1);
  });

  it("replays a workspace creation, owner key included", async () => {
    const idem = fresh("workspace");
    const first = await admin("POST", "/v1/workspaces", { body: { name: "Idem" }, headers: { "idempotency-key": idem } });
    expect(first.status).toBe(201);
    const again = await admin("POST", "/v1/workspaces", { body: { name: "Idem" }, headers: { "idempotency-key": idem } });
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    expect(again.body).toEqual(first.body);
    expect((await call("GET", "/v1/me", { token: again.body.key.key })).status).toBe(200);
  });
});

describe("a key is rerolled once", () => {
  it("answers a second reroll with 409 already_rerolled and the successor's id, minting nothing", async () => {
    const { key: owner } = await createWorkspace();
    const old = await createKey(owner, { name: "once", capabilities: ["keys:read"] });
    const first = await call("POST", `/v1/keys/${old.id}/reroll`, { token: owner, body: { grace_seconds: 3600 } });
    expect(first.status).toBe(201);
    const second = await call("POST", `/v1/keys/${old.id}/reroll`, { token: owner, body: { grace_seconds: 3600 } });
    expect(second.status).toBe(409);
    expect(second.body.error).toMatchObject({ code: "already_rerolled", successor_id: first.body.id });
    expect((await dbRow("SELECT COUNT(*) AS n FROM api_keys WHERE rerolled_from = ?", old.id)).n).toBe(1);
  });

  it("lets exactly one of two racing rerolls make a successor", async () => {
    const { key: owner } = await createWorkspace();
    const old = await createKey(owner, { name: "race", capabilities: ["keys:read"] });
    const outcomes = await Promise.all([1, 2, 3].map(() => call("POST", `/v1/keys/${old.id}/reroll`, { token: owner, body: {} })));
    expect(outcomes.map((o) => o.status).sort()).toEqual([201, 409, 409]);
    expect((await dbRow("SELECT COUNT(*) AS n FROM api_keys WHERE rerolled_from = ?", old.id)).n).toBe(1);
  });
});

describe("grace from first use", () => {
  it("keeps the old key until the new one is used, then for the grace", async () => {
    const { key: owner } = await createWorkspace();
    const old = await createKey(owner, { name: "old", capabilities: ["keys:read"] });
    const rerolled = await call("POST", `/v1/keys/${old.id}/reroll`, { token: owner, body: { grace_seconds: 1, grace_starts: "first_use" } });
    expect(rerolled.status).toBe(201);
    await new Promise((resolve) => setTimeout(resolve, 1200));
    expect((await call("GET", "/v1/me", { token: old.key })).status, "successor unused: the old key works on").toBe(200);
    const shown = await call("GET", `/v1/keys/${old.id}`, { token: owner });
    expect(Date.parse(shown.body.revoked_at), "it says when it stops at the latest (30 days)").toBeGreaterThan(Date.now() + 29 * 86400 * 1000);
    expect((await call("GET", "/v1/me", { token: rerolled.body.key })).status).toBe(200);
    expect((await call("GET", "/v1/me", { token: old.key })).status, "within the grace").toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 1300));
    expect((await call("GET", "/v1/me", { token: old.key })).status, "after the grace").toBe(401);
  });

  it("refuses an unknown grace_starts with 400", async () => {
    const { key: owner } = await createWorkspace();
    const old = await createKey(owner, { name: "old", capabilities: ["keys:read"] });
    const response = await call("POST", `/v1/keys/${old.id}/reroll`, { token: owner, body: { grace_starts: "later" } });
    expect(response.status).toBe(400);
    expect(response.body.error.field).toBe("grace_starts");
  });
});
