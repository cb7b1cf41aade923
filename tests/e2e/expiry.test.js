// Issue 14: api_key.expiring (7 days before expires_at, or at creation when sooner) and
// api_key.expired, each queued exactly once per key, however often the cron runs.
import { createExecutionContext, createScheduledController, env, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import worker from "../../build/index.js";
import { call, createKey, createWorkspace, dbRows } from "./helpers.js";

const DAY = 24 * 3600 * 1000;

async function runScheduled() {
  const ctx = createExecutionContext();
  await new worker(ctx, env).scheduled(createScheduledController({ cron: "*/5 * * * *", scheduledTime: Date.now() }));
  await waitOnExecutionContext(ctx);
}

async function withEndpoint() {
  const made = await createWorkspace();
  const endpoint = await call("PUT", "/v1/webhooks/endpoint", { token: made.key, body: { url: `${env.MOCK_PROVIDER}/receiver/ok/expiry` } });
  expect(endpoint.status).toBe(200);
  return made;
}

const queued = (workspaceId, type) =>
  dbRows("SELECT payload FROM outbox WHERE workspace_id = ? AND event_type = ?", workspaceId, type).then((rows) => rows.map((row) => JSON.parse(row.payload)));

/** Moves a key's expiry, as the passing of time would bring it closer. */
const expireAt = (keyId, at) => env.DB.prepare("UPDATE api_keys SET expires_at = ? WHERE id = ?").bind(at, keyId).run();

describe("expiry notices", () => {
  it("warns at creation of a key that expires within 7 days, once", async () => {
    const { workspace, key: owner } = await withEndpoint();
    const soon = await createKey(owner, { name: "soon", capabilities: ["keys:read"], expires_in: 3 * 24 * 3600 });
    await createKey(owner, { name: "later", capabilities: ["keys:read"], expires_in: 30 * 24 * 3600 });
    await Promise.all([runScheduled(), runScheduled()]);
    const warned = await queued(workspace.id, "api_key.expiring");
    expect(warned.map((event) => event.data)).toEqual([{ key_id: soon.id, name: "soon", expires_at: soon.expires_at }]);
    expect(warned[0].type).toBe("api_key.expiring");
  });

  it("queues api_key.expiring and then api_key.expired exactly once across concurrent cron runs", async () => {
    const { workspace, key: owner } = await withEndpoint();
    const key = await createKey(owner, { name: "rolling", capabilities: ["keys:read"], expires_in: 30 * 24 * 3600 });
    await expireAt(key.id, Date.now() + 5 * DAY);
    await Promise.all([runScheduled(), runScheduled(), runScheduled()]);
    await runScheduled();
    expect((await queued(workspace.id, "api_key.expiring")).map((event) => event.data.key_id)).toEqual([key.id]);
    await expireAt(key.id, Date.now() - 1000);
    await Promise.all([runScheduled(), runScheduled(), runScheduled()]);
    await runScheduled();
    const expired = await queued(workspace.id, "api_key.expired");
    expect(expired.map((event) => event.data)).toEqual([{ key_id: key.id, name: "rolling", expires_at: expect.stringMatching(/Z$/) }]);
  });
});
