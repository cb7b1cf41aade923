// Operator routes: /v1/workspaces, authenticated by ADMIN_TOKEN.
import { describe, expect, it } from "vitest";
import {
  KEY_PATTERN,
  TIMESTAMP_PATTERN,
  admin,
  base62,
  call,
  crc32,
  createKey,
  createWorkspace,
  dbRow,
  dbRows,
  sha256Hex,
  sleep,
} from "./helpers.js";

describe("POST /v1/workspaces", () => {
  it("creates a workspace and its owner key, shown once and not cached", async () => {
    const response = await admin("POST", "/v1/workspaces", {
      body: { name: "Acme", default_capabilities: ["desktop:read", "desktop:chat"] },
    });
    expect(response.status).toBe(201);
    expect(response.headers.get("cache-control")).toBe("no-store");
    expect(response.body.workspace).toEqual({
      id: expect.stringMatching(/^ws_[0-9A-Za-z]{20}$/),
      name: "Acme",
      read_only: false,
      default_capabilities: ["desktop:read", "desktop:chat"],
      created_at: expect.stringMatching(TIMESTAMP_PATTERN),
      max_key_lifetime_seconds: null,
      leak_policy: { action: "revoke", grace_seconds: 0 },
      metered_fallback: "allow",
    });
    const key = response.body.key;
    expect(key).toMatchObject({
      id: expect.stringMatching(/^key_/),
      capabilities: ["*"],
      key: expect.stringMatching(KEY_PATTERN),
      revoked_at: null,
      expires_at: null,
    });
    expect(key.last4).toBe(key.key.slice(-4));
    expect(key.masked).toBe(`kw_live_...${key.last4}`);
  });

  it("defaults default_capabilities to none", async () => {
    const { workspace } = await createWorkspace();
    expect(workspace.default_capabilities).toEqual([]);
  });

  it("issues an owner key whose checksum is CRC32 of its random part in base62", async () => {
    const { key } = await createWorkspace();
    const random = key.slice("kw_live_".length, "kw_live_".length + 32);
    const checksum = key.slice(-6);
    expect(checksum).toBe(base62(crc32(random), 6));
  });

  it("stores the owner key only as its SHA-256 hash", async () => {
    const { key, ownerKey, workspace } = await createWorkspace();
    const row = await dbRow("SELECT * FROM api_keys WHERE id = ?", ownerKey.id);
    expect(row.workspace_id).toBe(workspace.id);
    expect(row.key_hash).toBe(await sha256Hex(key));
    expect(row.last4).toBe(key.slice(-4));
    const everyColumn = JSON.stringify(row);
    expect(everyColumn).not.toContain(key);
    expect(everyColumn).not.toContain(key.slice("kw_live_".length, -6));
  });

  it("records the owner key's creation in the audit trail without the key", async () => {
    const { key, ownerKey, workspace } = await createWorkspace();
    const events = await dbRows("SELECT * FROM audit_events WHERE workspace_id = ?", workspace.id);
    expect(events.map((e) => e.action)).toEqual(["key.created"]);
    expect(events[0].target).toBe(ownerKey.id);
    expect(JSON.stringify(events)).not.toContain(key);
  });

  it("trims the name and refuses one over 100 characters", async () => {
    const trimmed = await admin("POST", "/v1/workspaces", { body: { name: "  Spaced  " } });
    expect(trimmed.body.workspace.name).toBe("Spaced");
    const long = await admin("POST", "/v1/workspaces", { body: { name: "x".repeat(101) } });
    expect(long.status).toBe(400);
    expect(long.body.error).toMatchObject({ code: "invalid_request", field: "name" });
  });

  it("writes nothing when the request is refused", async () => {
    const before = await dbRow("SELECT COUNT(*) AS n FROM workspaces");
    await admin("POST", "/v1/workspaces", { body: { name: "ok", default_capabilities: ["BAD"] } });
    await call("POST", "/v1/workspaces", { body: { name: "no token" } });
    const after = await dbRow("SELECT COUNT(*) AS n FROM workspaces");
    expect(after.n).toBe(before.n);
  });
});

describe("GET /v1/workspaces/{id}", () => {
  it("returns the workspace", async () => {
    const { workspace } = await createWorkspace({ default_capabilities: ["desktop:*"] });
    const response = await admin("GET", `/v1/workspaces/${workspace.id}`);
    expect(response.status).toBe(200);
    expect(response.body).toEqual(workspace);
  });

  it("answers 404 not_found for an unknown id", async () => {
    const response = await admin("GET", "/v1/workspaces/ws_doesnotexist");
    expect(response.status).toBe(404);
    expect(response.body.error.code).toBe("not_found");
  });
});

describe("PATCH /v1/workspaces/{id}", () => {
  it("changes only the fields given", async () => {
    const { workspace } = await createWorkspace({ default_capabilities: ["desktop:read"] });
    const renamed = await admin("PATCH", `/v1/workspaces/${workspace.id}`, { body: { name: "Renamed" } });
    expect(renamed.status).toBe(200);
    expect(renamed.body).toEqual({ ...workspace, name: "Renamed" });

    const locked = await admin("PATCH", `/v1/workspaces/${workspace.id}`, {
      body: { read_only: true, default_capabilities: ["desktop:chat"] },
    });
    expect(locked.body).toEqual({ ...workspace, name: "Renamed", read_only: true, default_capabilities: ["desktop:chat"] });

    const stored = await dbRow("SELECT name, read_only, default_capabilities FROM workspaces WHERE id = ?", workspace.id);
    expect(stored).toEqual({ name: "Renamed", read_only: 1, default_capabilities: '["desktop:chat"]' });
  });

  it("accepts an empty patch and changes nothing", async () => {
    const { workspace } = await createWorkspace();
    const response = await admin("PATCH", `/v1/workspaces/${workspace.id}`, { body: {} });
    expect(response.status).toBe(200);
    expect(response.body).toEqual(workspace);
  });

  it("refuses invalid fields and leaves the workspace as it was", async () => {
    const { workspace } = await createWorkspace();
    const response = await admin("PATCH", `/v1/workspaces/${workspace.id}`, { body: { name: "New", read_only: "yes" } });
    expect(response.status).toBe(400);
    expect(response.body.error).toMatchObject({ code: "invalid_request", field: "read_only" });
    expect((await admin("GET", `/v1/workspaces/${workspace.id}`)).body).toEqual(workspace);
  });

  it("answers 404 for an unknown id", async () => {
    const response = await admin("PATCH", "/v1/workspaces/ws_nope", { body: { name: "x" } });
    expect(response.status).toBe(404);
  });
});

describe("GET /v1/workspace", () => {
  it("shows any key of the workspace its workspace in full, default capabilities included", async () => {
    const { key: owner, workspace } = await createWorkspace({ default_capabilities: ["desktop:read", "desktop:chat"] });
    const narrow = await createKey(owner, { capabilities: ["desktop:chat"] });
    const seen = await call("GET", "/v1/workspace", { token: narrow.key });
    expect(seen.status, seen.text).toBe(200);
    expect(seen.body).toEqual(workspace);
    expect(seen.body.default_capabilities).toEqual(["desktop:read", "desktop:chat"]);

    await admin("PATCH", `/v1/workspaces/${workspace.id}`, { body: { read_only: true, default_capabilities: ["desktop:read"] } });
    const after = await call("GET", "/v1/workspace", { token: narrow.key });
    expect(after.body).toMatchObject({ id: workspace.id, read_only: true, default_capabilities: ["desktop:read"] });
  });

  it("answers 401 without a valid key, and to the admin token", async () => {
    expect((await call("GET", "/v1/workspace")).status).toBe(401);
    expect((await admin("GET", "/v1/workspace")).status).toBe(401);
  });
});

describe("GET /v1/workspaces", () => {
  it("lists newest first and pages with next_cursor until null", async () => {
    const created = [];
    for (let i = 0; i < 5; i++) {
      await sleep(2); // distinct created_at, so the expected order is the creation order
      created.push((await createWorkspace()).workspace.id);
    }

    const seen = [];
    let cursor = null;
    let pages = 0;
    do {
      const query = cursor ? `?limit=2&cursor=${encodeURIComponent(cursor)}` : "?limit=2";
      const response = await admin("GET", `/v1/workspaces${query}`);
      expect(response.status).toBe(200);
      expect(response.body.items.length).toBeLessThanOrEqual(2);
      seen.push(...response.body.items.map((w) => w.id));
      cursor = response.body.next_cursor;
      pages += 1;
    } while (cursor && pages < 200);

    expect(cursor).toBeNull();
    expect(new Set(seen).size).toBe(seen.length);
    const positions = created.map((id) => seen.indexOf(id));
    expect(positions.every((p) => p >= 0)).toBe(true);
    expect([...positions].sort((a, b) => b - a)).toEqual(positions);
  });

  it("refuses a malformed limit or cursor", async () => {
    const badLimit = await admin("GET", "/v1/workspaces?limit=zero");
    expect(badLimit.status).toBe(400);
    expect(badLimit.body.error).toMatchObject({ code: "invalid_request", field: "limit" });
    const badCursor = await admin("GET", "/v1/workspaces?cursor=garbage!");
    expect(badCursor.body.error).toMatchObject({ code: "invalid_request", field: "cursor" });
  });

  it("treats a limit above 100 as 100", async () => {
    const existing = (await admin("GET", "/v1/workspaces?limit=100")).body.items.length;
    await Promise.all(Array.from({ length: Math.max(0, 101 - existing) }, () => createWorkspace()));
    const response = await admin("GET", "/v1/workspaces?limit=5000");
    expect(response.status).toBe(200);
    expect(response.body.items).toHaveLength(100);
    expect(response.body.next_cursor).toEqual(expect.any(String));
  });
});

describe("operator authentication", () => {
  const routes = [
    ["POST", "/v1/workspaces", { name: "x" }],
    ["GET", "/v1/workspaces"],
    ["GET", "/v1/workspaces/ws_any"],
    ["PATCH", "/v1/workspaces/ws_any", { name: "x" }],
  ];

  it("answers 401 unauthorized without a token", async () => {
    for (const [method, path, body] of routes) {
      const response = await call(method, path, { body });
      expect(response.status, `${method} ${path}`).toBe(401);
      expect(response.body.error.code).toBe("unauthorized");
    }
  });

  it("answers 401 unauthorized with a wrong token, a near miss or another scheme", async () => {
    const { key } = await createWorkspace();
    for (const headers of [
      { authorization: "Bearer wrong" },
      { authorization: "Bearer kwadmin_test_0123456789abcdefghijklmnopqrstuvwxy" },
      { authorization: "Basic a3dhZG1pbjp4" },
      { authorization: `Bearer ${key}` },
    ]) {
      for (const [method, path, body] of routes) {
        const response = await call(method, path, { body, headers });
        expect(response.status, `${method} ${path} ${headers.authorization}`).toBe(401);
      }
    }
  });
});

describe("the key lifetime policy (max_key_lifetime_seconds)", () => {
  it("is null by default and set, read and removed with PATCH", async () => {
    const { workspace } = await createWorkspace();
    expect(workspace.max_key_lifetime_seconds).toBeNull();
    const set = await admin("PATCH", `/v1/workspaces/${workspace.id}`, { body: { max_key_lifetime_seconds: 3600 } });
    expect(set.status).toBe(200);
    expect(set.body.max_key_lifetime_seconds).toBe(3600);
    expect((await admin("GET", `/v1/workspaces/${workspace.id}`)).body.max_key_lifetime_seconds).toBe(3600);
    const removed = await admin("PATCH", `/v1/workspaces/${workspace.id}`, { body: { max_key_lifetime_seconds: null } });
    expect(removed.body.max_key_lifetime_seconds).toBeNull();
  });

  it("refuses an out-of-range policy with 400 naming the field", async () => {
    const { workspace } = await createWorkspace();
    for (const value of [0, 315360001, "3600", -1]) {
      const response = await admin("PATCH", `/v1/workspaces/${workspace.id}`, { body: { max_key_lifetime_seconds: value } });
      expect(response.status, JSON.stringify(value)).toBe(400);
      expect(response.body.error).toMatchObject({ code: "invalid_request", field: "max_key_lifetime_seconds" });
    }
  });

  it("refuses keys without an expiry or beyond it with 422 lifetime_exceeds_policy, and stores none", async () => {
    const { workspace, key: owner } = await createWorkspace();
    await admin("PATCH", `/v1/workspaces/${workspace.id}`, { body: { max_key_lifetime_seconds: 3600 } });
    const forever = await call("POST", "/v1/keys", { token: owner, body: { name: "forever", capabilities: ["keys:read"] } });
    expect(forever.status).toBe(422);
    expect(forever.body.error).toMatchObject({ code: "lifetime_exceeds_policy", field: "expires_at" });
    const tooLong = await call("POST", "/v1/keys", { token: owner, body: { name: "long", capabilities: ["keys:read"], expires_in: 3601 } });
    expect(tooLong.status).toBe(422);
    expect(tooLong.body.error.field).toBe("expires_in");
    const stored = await dbRow("SELECT COUNT(*) AS n FROM api_keys WHERE workspace_id = ? AND name IN ('forever', 'long')", workspace.id);
    expect(stored.n).toBe(0);
    const within = await call("POST", "/v1/keys", { token: owner, body: { name: "within", capabilities: ["keys:read"], expires_in: 3600 } });
    expect(within.status).toBe(201);
  });

  it("refuses rerolling a key that never expires, and makes no successor", async () => {
    const { workspace, key: owner, ownerKey } = await createWorkspace();
    await admin("PATCH", `/v1/workspaces/${workspace.id}`, { body: { max_key_lifetime_seconds: 3600 } });
    const reroll = await call("POST", `/v1/keys/${ownerKey.id}/reroll`, { token: owner, body: { grace_seconds: 0 } });
    expect(reroll.status).toBe(422);
    expect(reroll.body.error).toMatchObject({ code: "lifetime_exceeds_policy", field: "expires_at" });
    expect((await dbRow("SELECT COUNT(*) AS n FROM api_keys WHERE rerolled_from = ?", ownerKey.id)).n).toBe(0);
    expect((await call("GET", "/v1/me", { token: owner })).status, "the old key still works").toBe(200);
  });
});
