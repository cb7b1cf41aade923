// Issue 13: the key authority. Every authentication of a workspace's keys goes through that
// workspace's Durable Object, which mirrors its keys from D1 and counts uses in memory.
import {
  createExecutionContext,
  env,
  evictDurableObject,
  runDurableObjectAlarm,
  runInDurableObject,
  waitOnExecutionContext,
} from "cloudflare:test";
import { describe, expect, it } from "vitest";
import worker from "../../build/index.js";
import { admin, call, createKey, createWorkspace, dbRow, randomIp } from "./helpers.js";

// The object of a workspace under the default layout (AUTHORITY_EPOCH 1, one shard).
const objectOf = (workspaceId) => env.AUTHORITY.get(env.AUTHORITY.idFromName(`1/${workspaceId}/0of1`));

async function objectRows(workspaceId, sql) {
  return runInDurableObject(objectOf(workspaceId), (_instance, state) => state.storage.sql.exec(sql).toArray());
}

/** A request through a Worker whose variables differ from the suite's (e.g. D1 answering). */
async function callWith(vars, method, path, token) {
  const ctx = createExecutionContext();
  const instance = new worker(ctx, { ...env, ...vars });
  const headers = { authorization: `Bearer ${token}`, "cf-connecting-ip": randomIp() };
  const response = await instance.fetch(new Request(`http://keywarden.test${path}`, { method, headers }));
  await waitOnExecutionContext(ctx);
  return { status: response.status, body: JSON.parse(await response.text()) };
}

describe("the key authority", () => {
  it("answers from the workspace's object, which then holds the key and its workspace", async () => {
    const { workspace, key } = await createWorkspace();
    const me = await call("GET", "/v1/me", { token: key });
    expect(me.status).toBe(200);
    const keys = await objectRows(workspace.id, "SELECT key_id FROM keys");
    expect(keys.map((row) => row.key_id)).toEqual([me.body.key.id]);
    const [mirrored] = await objectRows(workspace.id, "SELECT record FROM workspace");
    expect(JSON.parse(mirrored.record).id).toBe(workspace.id);
  });

  it("accepts no request sent after a revoke has answered, with 200 in flight across it", async () => {
    const { key: owner } = await createWorkspace();
    const target = await createKey(owner, { name: "busy", capabilities: ["keys:read"] });
    const outcomes = [];
    // Workers clocks stand still between I/O, so "after" is told by order, not by timestamps.
    let revokeAnswered = false;
    const send = async () => {
      const afterRevoke = revokeAnswered;
      const response = await call("GET", "/v1/me", { token: target.key });
      outcomes.push({ afterRevoke, status: response.status });
    };
    const inFlight = [];
    for (let i = 0; i < 200; i++) {
      inFlight.push(send());
      if (i === 100) {
        inFlight.push(
          call("DELETE", `/v1/keys/${target.id}`, { token: owner }).then((response) => {
            expect(response.status).toBe(200);
            revokeAnswered = true;
          }),
        );
      }
      if (i % 20 === 0) await new Promise((resolve) => setTimeout(resolve, 1));
    }
    await Promise.all(inFlight);
    for (let i = 0; i < 20; i++) await send();
    const late = outcomes.filter((outcome) => outcome.afterRevoke);
    expect(late.length).toBeGreaterThanOrEqual(20);
    expect(late.filter((outcome) => outcome.status !== 401), "requests sent after the revoke answered").toEqual([]);
    expect(outcomes.some((outcome) => outcome.status === 200), "some were accepted before it").toBe(true);
  });

  it("admits exactly the limit of 20 parallel requests with a limit of 5", async () => {
    const { key: owner } = await createWorkspace();
    const limited = await createKey(owner, { name: "limited", capabilities: ["keys:read"], rate_limit: { limit: 5, window_seconds: 60 } });
    const responses = await Promise.all(Array.from({ length: 20 }, () => call("GET", "/v1/me", { token: limited.key })));
    const statuses = responses.map((response) => response.status);
    expect(statuses.filter((status) => status === 200).length, `statuses: ${statuses}`).toBe(5);
    expect(statuses.filter((status) => status === 429).length).toBe(15);
  });

  it("keeps a revoked key revoked and its rate count within the limit after the object is evicted", async () => {
    const { workspace, key: owner } = await createWorkspace();
    const revoked = await createKey(owner, { name: "revoked", capabilities: ["keys:read"] });
    const limited = await createKey(owner, { name: "limited", capabilities: ["keys:read"], rate_limit: { limit: 3, window_seconds: 60 } });
    expect((await call("GET", "/v1/me", { token: revoked.key })).status).toBe(200);
    expect((await call("DELETE", `/v1/keys/${revoked.id}`, { token: owner })).status).toBe(200);
    for (let i = 0; i < 2; i++) expect((await call("GET", "/v1/me", { token: limited.key })).status).toBe(200);

    await evictDurableObject(objectOf(workspace.id));

    expect((await call("GET", "/v1/me", { token: revoked.key })).status, "revoked before the eviction").toBe(401);
    const after = [];
    for (let i = 0; i < 3; i++) after.push((await call("GET", "/v1/me", { token: limited.key })).status);
    expect(after.filter((status) => status === 200).length, `after eviction: ${after}`).toBeLessThanOrEqual(1);
  });

  it("restores the exact count after an eviction when the alarm had saved it", async () => {
    const { workspace, key: owner } = await createWorkspace();
    const limited = await createKey(owner, { name: "limited", capabilities: ["keys:read"], rate_limit: { limit: 3, window_seconds: 60 } });
    for (let i = 0; i < 2; i++) expect((await call("GET", "/v1/me", { token: limited.key })).status).toBe(200);
    expect(await runDurableObjectAlarm(objectOf(workspace.id))).toBe(true);
    await evictDurableObject(objectOf(workspace.id));
    const third = await call("GET", "/v1/me", { token: limited.key });
    expect(third.status).toBe(200);
    expect(third.headers.get("ratelimit-remaining")).toBe("0");
    expect((await call("GET", "/v1/me", { token: limited.key })).status).toBe(429);
  });

  it("saves counters and last_used_at with its alarm, and D1 is not written before", async () => {
    const { workspace, key: owner } = await createWorkspace();
    const limited = await createKey(owner, { name: "limited", capabilities: ["keys:read"], rate_limit: { limit: 10, window_seconds: 60 } });
    expect((await call("GET", "/v1/me", { token: limited.key })).status).toBe(200);
    expect((await dbRow("SELECT last_used_at FROM api_keys WHERE id = ?", limited.id)).last_used_at, "not yet written").toBeNull();
    const [marked] = await objectRows(workspace.id, `SELECT hits, marked FROM counters WHERE key_id = '${limited.id}'`);
    expect(marked.marked, "the unsaved use is marked").toBe(1);

    expect(await runDurableObjectAlarm(objectOf(workspace.id))).toBe(true);

    const [saved] = await objectRows(workspace.id, `SELECT hits, marked FROM counters WHERE key_id = '${limited.id}'`);
    expect(saved).toEqual({ hits: 1, marked: 0 });
    const stored = await dbRow("SELECT last_used_at FROM api_keys WHERE id = ?", limited.id);
    expect(stored.last_used_at).toBeGreaterThan(Date.now() - 60_000);
  });

  it("refuses writes on the very next request once the workspace is made read-only", async () => {
    const { workspace, key: owner } = await createWorkspace();
    expect((await call("GET", "/v1/me", { token: owner })).status).toBe(200);
    expect((await admin("PATCH", `/v1/workspaces/${workspace.id}`, { body: { read_only: true } })).status).toBe(200);
    const write = await call("POST", "/v1/keys", { token: owner, body: { name: "after" } });
    expect(write.status).toBe(403);
    expect(write.body.error.code).toBe("workspace_read_only");
    expect((await call("GET", "/v1/me", { token: owner })).body.workspace.read_only).toBe(true);
  });

  it("keeps authenticating keys of a database from before the authority, and revokes them", async () => {
    // Made and used with D1 answering, as before this change: no object has seen the key.
    const { workspace, key: owner } = await createWorkspace();
    const old = await createKey(owner, { name: "old", capabilities: ["keys:read"] });
    expect((await callWith({ KEY_AUTHORITY: "catalogue" }, "GET", "/v1/me", old.key)).status).toBe(200);
    expect(await objectRows(workspace.id, "SELECT key_id FROM keys WHERE key_id = '" + old.id + "'")).toEqual([]);

    expect((await call("GET", "/v1/me", { token: old.key })).status, "read through on first use").toBe(200);
    expect((await call("DELETE", `/v1/keys/${old.id}`, { token: owner })).status).toBe(200);
    expect((await call("GET", "/v1/me", { token: old.key })).status).toBe(401);
  });

  it("keeps the objects up to date when D1 answers, so switching back is safe", async () => {
    const { key: owner } = await createWorkspace();
    const switched = await createKey(owner, { name: "switched", capabilities: ["keys:read"] });
    expect((await call("GET", "/v1/me", { token: switched.key })).status).toBe(200);
    expect((await callWith({ KEY_AUTHORITY: "catalogue" }, "DELETE", `/v1/keys/${switched.id}`, owner)).status).toBe(200);
    expect((await call("GET", "/v1/me", { token: switched.key })).status, "the object saw the revoke").toBe(401);
  });

  it("starts from fresh objects under a new AUTHORITY_EPOCH, which read through from D1", async () => {
    const { workspace, key: owner } = await createWorkspace();
    const key = await createKey(owner, { name: "epoch", capabilities: ["keys:read"] });
    expect((await call("GET", "/v1/me", { token: key.key })).status).toBe(200);
    expect((await call("DELETE", `/v1/keys/${key.id}`, { token: owner })).status).toBe(200);
    expect((await callWith({ AUTHORITY_EPOCH: "2" }, "GET", "/v1/me", key.key)).status, "read through: revoked").toBe(401);
    const fresh = env.AUTHORITY.get(env.AUTHORITY.idFromName(`2/${workspace.id}/0of1`));
    const mirrored = await runInDurableObject(fresh, (_instance, state) => state.storage.sql.exec("SELECT key_id FROM keys").toArray());
    expect(mirrored.map((row) => row.key_id)).toEqual([key.id]);
  });

  it("keeps every use of an hour counted when the key moves to another object or to D1", async () => {
    const { key: owner } = await createWorkspace();
    const key = await createKey(owner, { name: "moved", capabilities: ["keys:read"] });
    for (let i = 0; i < 3; i++) expect((await call("GET", "/v1/me", { token: key.key })).status).toBe(200);
    for (let i = 0; i < 2; i++) expect((await callWith({ AUTHORITY_EPOCH: "2" }, "GET", "/v1/me", key.key)).status).toBe(200);
    expect((await callWith({ KEY_AUTHORITY: "catalogue" }, "GET", "/v1/me", key.key)).status).toBe(200);
    // A read settles its own layout's objects: read under epoch 2 first, then under epoch 1.
    await callWith({ AUTHORITY_EPOCH: "2" }, "GET", `/v1/keys/${key.id}/usage`, owner);
    const usage = await call("GET", `/v1/keys/${key.id}/usage`, { token: owner });
    expect(usage.body.buckets.reduce((sum, b) => sum + b.valid, 0), "3 + 2 + 1 uses").toBe(6);
    const counters = await dbRow("SELECT COUNT(*) AS n FROM key_usage WHERE key_id = ?", key.id);
    expect(counters.n, "one row per counter: two objects and D1").toBe(3);
  });

  it("answers a revoked key's leak report and revokes it through the object", async () => {
    const { key: owner } = await createWorkspace();
    const leaked = await createKey(owner, { name: "leaked", capabilities: ["keys:read"] });
    expect((await call("GET", "/v1/me", { token: leaked.key })).status).toBe(200);
    const report = await admin("POST", "/v1/leaks", { body: [{ token: leaked.key, type: "keywarden_key", url: "https://example.com/x" }] });
    expect(report.status).toBe(200);
    expect((await call("GET", "/v1/me", { token: leaked.key })).status).toBe(401);
  });

  it("lets a rerolled key's successor in and ends the old key with the grace", async () => {
    const { key: owner } = await createWorkspace();
    const first = await createKey(owner, { name: "rolled", capabilities: ["keys:read"] });
    expect((await call("GET", "/v1/me", { token: first.key })).status).toBe(200);
    const reroll = await call("POST", `/v1/keys/${first.id}/reroll`, { token: owner, body: { grace_seconds: 0 } });
    expect(reroll.status).toBe(201);
    expect((await call("GET", "/v1/me", { token: reroll.body.key })).status).toBe(200);
    expect((await call("GET", "/v1/me", { token: first.key })).status).toBe(401);
  });
});
