// Platform keys: /v1/keys, verify, reroll, revoke, limits and Le Bureau's routes.
import { describe, expect, it } from "vitest";
import {
  KEY_PATTERN,
  admin,
  call,
  createKey,
  createWorkspace,
  dbRow,
  dbRows,
  eventually,
  sha256Hex,
  sleep,
  unknownKey,
} from "./helpers.js";

/** Failed attempts count in fixed 60 s windows: start a test well inside one. */
async function awaitFreshMinute() {
  const intoWindow = Date.now() % 60_000;
  if (intoWindow > 50_000) await sleep(60_000 - intoWindow + 50);
}

/** The authority copies `last_used_at` to D1 with its next flush (every second), later under load. */
function lastUseWritten(keyId) {
  return eventually(
    () => dbRow("SELECT last_used_at FROM api_keys WHERE id = ?", keyId),
    (row) => row.last_used_at !== null,
    `last_used_at of ${keyId} written`,
  );
}

describe("POST /v1/keys", () => {
  it("creates a key shown once, with every field of the key object", async () => {
    const { key: owner } = await createWorkspace();
    const response = await call("POST", "/v1/keys", {
      token: owner,
      body: {
        name: "Production CI",
        capabilities: ["desktop:read", "keys:read"],
        subject: { user_id: "u_1", email: "ada@example.com", role: "admin", tier: "pro" },
        expires_in: 3600,
        rate_limit: { limit: 100, window_seconds: 60 },
      },
    });
    expect(response.status).toBe(201);
    expect(response.headers.get("cache-control")).toBe("no-store");
    const key = response.body;
    expect(key).toMatchObject({
      id: expect.stringMatching(/^key_/),
      name: "Production CI",
      capabilities: ["desktop:read", "keys:read"],
      subject: { user_id: "u_1", email: "ada@example.com", role: "admin", tier: "pro" },
      rate_limit: { limit: 100, window_seconds: 60 },
      revoked_at: null,
      last_used_at: null,
      rerolled_from: null,
      key: expect.stringMatching(KEY_PATTERN),
    });
    expect(key.masked).toBe(`kw_live_...${key.key.slice(-4)}`);
    expect(Date.parse(key.expires_at) - Date.parse(key.created_at)).toBe(3600 * 1000);
    const row = await dbRow("SELECT key_hash FROM api_keys WHERE id = ?", key.id);
    expect(row.key_hash).toBe(await sha256Hex(key.key));
  });

  it("gives a key the workspace's default capabilities when none are named", async () => {
    const { key: owner } = await createWorkspace({ default_capabilities: ["desktop:read", "desktop:chat"] });
    const key = await createKey(owner);
    expect(key.capabilities).toEqual(["desktop:read", "desktop:chat"]);
  });

  it("accepts an RFC 3339 expires_at and refuses one in the past or both expiry fields", async () => {
    const { key: owner } = await createWorkspace();
    const at = new Date(Date.now() + 86_400_000).toISOString().replace(/\.\d+Z$/, "Z");
    expect((await createKey(owner, { expires_at: at })).expires_at).toBe(at);
    const past = await call("POST", "/v1/keys", { token: owner, body: { name: "x", expires_at: "2001-01-01T00:00:00Z" } });
    expect(past.body.error).toMatchObject({ code: "invalid_request", field: "expires_at" });
    const both = await call("POST", "/v1/keys", { token: owner, body: { name: "x", expires_at: at, expires_in: 5 } });
    expect(both.status).toBe(400);
  });

  it("names the offending field of an invalid key request", async () => {
    const { key: owner } = await createWorkspace();
    const cases = [
      [{}, "name"],
      [{ name: "x".repeat(101) }, "name"],
      [{ name: "x", capabilities: ["NOPE"] }, "capabilities"],
      [{ name: "x", capabilities: Array.from({ length: 33 }, (_, i) => `ns:a${i}`) }, "capabilities"],
      [{ name: "x", subject: "not an object" }, "subject"],
      [{ name: "x", subject: { blob: "y".repeat(3000) } }, "subject"],
      [{ name: "x", expires_in: 0 }, "expires_in"],
      [{ name: "x", rate_limit: { limit: 0, window_seconds: 60 } }, "rate_limit.limit"],
      [{ name: "x", rate_limit: { limit: 5, window_seconds: 3601 } }, "rate_limit.window_seconds"],
      [{ name: "x", rate_limit: { limit: 5 } }, "rate_limit.window_seconds"],
      [{ name: "x", rate_limit: { limit: 5, window_seconds: 1, burst: 2 } }, "rate_limit.burst"],
      [{ name: "x", scopes: ["a:b"] }, "scopes"],
    ];
    for (const [body, field] of cases) {
      const response = await call("POST", "/v1/keys", { token: owner, body });
      expect(response.status, JSON.stringify(body).slice(0, 80)).toBe(400);
      expect(response.body.error, JSON.stringify(body).slice(0, 80)).toMatchObject({ code: "invalid_request", field });
    }
  });

  it("refuses a key broader than the one creating it with 403 capability_escalation", async () => {
    const { key: owner, workspace } = await createWorkspace();
    const minter = await createKey(owner, { capabilities: ["keys:write", "desktop:read"] });
    for (const capabilities of [["desktop:*"], ["*"], ["keys:read"], ["keys:*"]]) {
      const response = await call("POST", "/v1/keys", { token: minter.key, body: { name: "wider", capabilities } });
      expect(response.status, capabilities.join()).toBe(403);
      expect(response.body.error.code).toBe("capability_escalation");
    }
    const narrower = await call("POST", "/v1/keys", { token: minter.key, body: { name: "ok", capabilities: ["desktop:read"] } });
    expect(narrower.status).toBe(201);
    const count = await dbRow("SELECT COUNT(*) AS n FROM api_keys WHERE workspace_id = ?", workspace.id);
    expect(count.n).toBe(3);
  });

  it("lets wildcard holders mint what their wildcard covers", async () => {
    const { key: owner } = await createWorkspace();
    const desktopAdmin = await createKey(owner, { capabilities: ["desktop:*", "keys:write"] });
    const minted = await call("POST", "/v1/keys", {
      token: desktopAdmin.key,
      body: { name: "chat only", capabilities: ["desktop:chat", "desktop:*"] },
    });
    expect(minted.status).toBe(201);
  });

  it("creates 50 keys concurrently without losing or duplicating one", async () => {
    const { key: owner, workspace } = await createWorkspace();
    const responses = await Promise.all(
      Array.from({ length: 50 }, (_, i) => call("POST", "/v1/keys", { token: owner, body: { name: `k${i}` } })),
    );
    expect(responses.map((r) => r.status)).toEqual(Array(50).fill(201));
    const ids = new Set(responses.map((r) => r.body.id));
    const secrets = new Set(responses.map((r) => r.body.key));
    expect(ids.size).toBe(50);
    expect(secrets.size).toBe(50);
    const rows = await dbRows("SELECT id FROM api_keys WHERE workspace_id = ? AND name LIKE 'k%'", workspace.id);
    expect(new Set(rows.map((r) => r.id))).toEqual(ids);
  });
});

describe("capabilities on the key routes", () => {
  it("answers 403 missing_capability naming the one capability the route needs", async () => {
    const { key: owner } = await createWorkspace();
    const bare = await createKey(owner, { capabilities: ["desktop:read"] });
    const target = await createKey(owner);
    const cases = [
      ["GET", "/v1/keys", undefined, "keys:read"],
      ["GET", `/v1/keys/${target.id}`, undefined, "keys:read"],
      ["POST", "/v1/keys", { name: "x", capabilities: [] }, "keys:write"],
      ["DELETE", `/v1/keys/${target.id}`, undefined, "keys:write"],
      ["POST", `/v1/keys/${target.id}/reroll`, {}, "keys:write"],
      ["POST", "/v1/keys/verify", { key: target.key }, "keys:verify"],
    ];
    for (const [method, path, body, required] of cases) {
      const response = await call(method, path, { token: bare.key, body });
      expect(response.status, `${method} ${path}`).toBe(403);
      expect(response.body.error).toMatchObject({ code: "missing_capability", required });
    }
    expect((await call("GET", "/v1/me", { token: bare.key })).status).toBe(200);
  });

  it("grants a namespace wildcard every action of that namespace", async () => {
    const { key: owner } = await createWorkspace();
    const keysAdmin = await createKey(owner, { capabilities: ["keys:*"] });
    expect((await call("GET", "/v1/keys", { token: keysAdmin.key })).status).toBe(200);
    expect((await call("POST", "/v1/keys/verify", { token: keysAdmin.key, body: { key: keysAdmin.key } })).status).toBe(200);
  });
});

describe("GET /v1/keys", () => {
  it("lists newest first with masked previews, never plaintext or hash, and pages", async () => {
    const { key: owner, ownerKey, workspace } = await createWorkspace();
    const created = [];
    for (let i = 0; i < 4; i++) {
      await sleep(2); // distinct created_at, so the expected order is the creation order
      created.push(await createKey(owner, { name: `key ${i}` }));
    }
    const first = await call("GET", "/v1/keys?limit=3", { token: owner });
    expect(first.status).toBe(200);
    expect(first.body.items).toHaveLength(3);
    const second = await call("GET", `/v1/keys?limit=3&cursor=${encodeURIComponent(first.body.next_cursor)}`, { token: owner });
    expect(second.body.next_cursor).toBeNull();
    const listed = [...first.body.items, ...second.body.items].map((k) => k.id);
    expect(listed).toEqual([...created.map((k) => k.id)].reverse().concat(ownerKey.id));

    const everything = JSON.stringify([first.body, second.body]);
    const rows = await dbRows("SELECT key_hash FROM api_keys WHERE workspace_id = ?", workspace.id);
    for (const secret of [owner, ...created.map((k) => k.key), ...rows.map((r) => r.key_hash)]) {
      expect(everything).not.toContain(secret);
    }
    for (const item of first.body.items) {
      expect(item.key).toBeUndefined();
      expect(item.masked).toMatch(/^kw_live_\.\.\.[0-9A-Za-z]{4}$/);
    }
  });

  it("hides revoked keys unless include_revoked=true", async () => {
    const { key: owner } = await createWorkspace();
    const doomed = await createKey(owner);
    await call("DELETE", `/v1/keys/${doomed.id}`, { token: owner });
    const live = await call("GET", "/v1/keys", { token: owner });
    expect(live.body.items.map((k) => k.id)).not.toContain(doomed.id);
    const all = await call("GET", "/v1/keys?include_revoked=true", { token: owner });
    const shown = all.body.items.find((k) => k.id === doomed.id);
    expect(shown.revoked_at).toEqual(expect.any(String));
    const bad = await call("GET", "/v1/keys?include_revoked=maybe", { token: owner });
    expect(bad.body.error).toMatchObject({ code: "invalid_request", field: "include_revoked" });
  });
});

describe("GET /v1/keys/{id}", () => {
  it("returns the key object and 404 for another workspace's key", async () => {
    const { key: owner } = await createWorkspace();
    const { key: otherOwner } = await createWorkspace();
    const mine = await createKey(owner, { name: "mine" });
    const response = await call("GET", `/v1/keys/${mine.id}`, { token: owner });
    expect(response.status).toBe(200);
    const { key: _secret, ...withoutSecret } = mine;
    expect(response.body).toEqual(withoutSecret);
    for (const [method, path] of [
      ["GET", `/v1/keys/${mine.id}`],
      ["DELETE", `/v1/keys/${mine.id}`],
      ["POST", `/v1/keys/${mine.id}/reroll`],
    ]) {
      const foreign = await call(method, path, { token: otherOwner, body: method === "POST" ? {} : undefined });
      expect(foreign.status, `${method} ${path}`).toBe(404);
      expect(foreign.body.error.code).toBe("not_found");
    }
    expect((await call("GET", "/v1/me", { token: mine.key })).status).toBe(200);
  });
});

describe("DELETE /v1/keys/{id}", () => {
  it("takes effect on the very next request, with either header", async () => {
    const { key: owner } = await createWorkspace();
    for (const header of ["token", "apiKey"]) {
      const victim = await createKey(owner);
      expect((await call("GET", "/v1/me", { [header]: victim.key })).status).toBe(200);
      const revoked = await call("DELETE", `/v1/keys/${victim.id}`, { token: owner });
      expect(revoked.status).toBe(200);
      expect(revoked.body).toEqual({ id: victim.id, revoked_at: expect.any(String) });
      const next = await call("GET", "/v1/me", { [header]: victim.key });
      expect(next.status, header).toBe(401);
      expect(next.body.error.code).toBe("unauthorized");
    }
  });

  it("answers a repeat with the same revoked_at and audits once", async () => {
    const { key: owner, workspace } = await createWorkspace();
    const victim = await createKey(owner);
    const first = await call("DELETE", `/v1/keys/${victim.id}`, { token: owner });
    await sleep(1100);
    const again = await call("DELETE", `/v1/keys/${victim.id}`, { token: owner });
    expect(again.status).toBe(200);
    expect(again.body).toEqual(first.body);
    const events = await dbRows(
      "SELECT action, target, actor_key_id, detail FROM audit_events WHERE workspace_id = ? AND action = 'key.revoked'",
      workspace.id,
    );
    expect(events).toHaveLength(1);
    expect(events[0].target).toBe(victim.id);
    expect(JSON.stringify(events)).not.toContain(victim.key);
  });

  it("lets a key revoke itself", async () => {
    const { key: owner } = await createWorkspace();
    const self = await createKey(owner, { capabilities: ["keys:write"] });
    expect((await call("DELETE", `/v1/keys/${self.id}`, { token: self.key })).status).toBe(200);
    expect((await call("GET", "/v1/me", { token: self.key })).status).toBe(401);
  });
});

describe("POST /v1/keys/{id}/reroll", () => {
  it("with no grace issues a successor and ends the old key at once", async () => {
    const { key: owner } = await createWorkspace();
    const old = await createKey(owner, {
      name: "rolling",
      capabilities: ["desktop:read"],
      subject: { user_id: "u_9" },
      rate_limit: { limit: 50, window_seconds: 60 },
    });
    const response = await call("POST", `/v1/keys/${old.id}/reroll`, { token: owner });
    expect(response.status).toBe(201);
    expect(response.headers.get("cache-control")).toBe("no-store");
    expect(response.body).toMatchObject({
      name: "rolling",
      capabilities: ["desktop:read"],
      subject: { user_id: "u_9" },
      rate_limit: { limit: 50, window_seconds: 60 },
      rerolled_from: old.id,
      key: expect.stringMatching(KEY_PATTERN),
    });
    expect(response.body.id).not.toBe(old.id);
    expect((await call("GET", "/v1/me", { token: old.key })).status).toBe(401);
    expect((await call("GET", "/v1/me", { token: response.body.key })).status).toBe(200);
  });

  it("with a grace period keeps the old key working until it ends", async () => {
    const { key: owner } = await createWorkspace();
    const old = await createKey(owner);
    const before = Date.now();
    const response = await call("POST", `/v1/keys/${old.id}/reroll`, { token: owner, body: { grace_seconds: 2 } });
    expect(response.status).toBe(201);
    expect((await call("GET", "/v1/me", { token: old.key })).status).toBe(200);
    expect((await call("GET", "/v1/me", { token: response.body.key })).status).toBe(200);
    const shown = await call("GET", `/v1/keys/${old.id}`, { token: owner });
    // Shown in whole seconds: at least the second in which the grace began, plus the grace.
    expect(Date.parse(shown.body.revoked_at)).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000 + 2000);
    await sleep(2100);
    expect((await call("GET", "/v1/me", { token: old.key })).status).toBe(401);
    expect((await call("GET", "/v1/me", { token: response.body.key })).status).toBe(200);
  });

  it("refuses an out-of-range grace and a key already revoked", async () => {
    const { key: owner } = await createWorkspace();
    const old = await createKey(owner);
    const tooLong = await call("POST", `/v1/keys/${old.id}/reroll`, { token: owner, body: { grace_seconds: 604801 } });
    expect(tooLong.body.error).toMatchObject({ code: "invalid_request", field: "grace_seconds" });
    await call("DELETE", `/v1/keys/${old.id}`, { token: owner });
    const dead = await call("POST", `/v1/keys/${old.id}/reroll`, { token: owner });
    expect(dead.status).toBe(409);
    expect(dead.body.error.code).toBe("key_revoked");
  });

  it("refuses to reroll an expired key, which would give a successor already dead", async () => {
    const { key: owner, workspace } = await createWorkspace();
    const brief = await createKey(owner, { expires_in: 1 });
    await sleep(1100);
    const response = await call("POST", `/v1/keys/${brief.id}/reroll`, { token: owner });
    expect(response.status).toBe(409);
    expect(response.body.error.code).toBe("key_expired");
    const count = await dbRow("SELECT COUNT(*) AS n FROM api_keys WHERE workspace_id = ?", workspace.id);
    expect(count.n).toBe(2);
  });
});

describe("expiry", () => {
  it("answers 401 once a key has expired", async () => {
    const { key: owner } = await createWorkspace();
    const brief = await createKey(owner, { expires_in: 1 });
    expect((await call("GET", "/v1/me", { token: brief.key })).status).toBe(200);
    await sleep(1100);
    const expired = await call("GET", "/v1/me", { token: brief.key });
    expect(expired.status).toBe(401);
    expect(expired.body.error.code).toBe("unauthorized");
  });
});

describe("POST /v1/keys/verify", () => {
  async function verify(token, key, capabilities) {
    const response = await call("POST", "/v1/keys/verify", { token, body: capabilities ? { key, capabilities } : { key } });
    expect(response.status).toBe(200);
    return response.body;
  }

  it("answers VALID with the key's id, capabilities, subject and expiry", async () => {
    const { key: owner } = await createWorkspace();
    const checked = await createKey(owner, { capabilities: ["desktop:*"], subject: { user_id: "u_1" }, expires_in: 600 });
    const body = await verify(owner, checked.key, ["desktop:chat"]);
    expect(body).toEqual({
      valid: true,
      code: "VALID",
      key_id: checked.id,
      capabilities: ["desktop:*"],
      subject: { user_id: "u_1" },
      expires_at: checked.expires_at,
    });
  });

  it("answers a code for every other outcome", async () => {
    const { key: owner } = await createWorkspace();
    const { key: foreignOwner } = await createWorkspace();
    const chat = await createKey(owner, { capabilities: ["desktop:chat"] });
    const revoked = await createKey(owner);
    await call("DELETE", `/v1/keys/${revoked.id}`, { token: owner });
    const brief = await createKey(owner, { expires_in: 1 });
    const limited = await createKey(owner, { rate_limit: { limit: 1, window_seconds: 3600 } });
    await sleep(1100);

    expect(await verify(owner, "kw_live_garbage")).toEqual({ valid: false, code: "MALFORMED" });
    expect(await verify(owner, unknownKey())).toEqual({ valid: false, code: "NOT_FOUND" });
    expect(await verify(owner, foreignOwner)).toEqual({ valid: false, code: "NOT_FOUND" });
    expect(await verify(owner, revoked.key)).toMatchObject({ valid: false, code: "REVOKED", key_id: revoked.id });
    expect(await verify(owner, brief.key)).toMatchObject({ valid: false, code: "EXPIRED", key_id: brief.id });
    expect(await verify(owner, chat.key, ["desktop:read"])).toMatchObject({ valid: false, code: "INSUFFICIENT_CAPABILITIES" });
    expect(await verify(owner, limited.key)).toMatchObject({ valid: true, code: "VALID" });
    expect(await verify(owner, limited.key)).toMatchObject({ valid: false, code: "RATE_LIMITED", key_id: limited.id });
  });

  it("counts as a use of the verified key", async () => {
    const { key: owner } = await createWorkspace();
    const checked = await createKey(owner);
    await verify(owner, checked.key);
    const row = await lastUseWritten(checked.id);
    expect(row.last_used_at).toEqual(expect.any(Number));
  });
});

describe("failed-attempt limit", () => {
  it("blocks an IP after 10 failures, even with a valid key, and leaves other IPs alone", async () => {
    await awaitFreshMinute();
    const { key: owner } = await createWorkspace();
    const ip = "203.0.113.77";
    for (let attempt = 1; attempt <= 10; attempt++) {
      const response = await call("GET", "/v1/me", { token: unknownKey(), ip });
      expect(response.status, `attempt ${attempt}`).toBe(401);
    }
    const eleventh = await call("GET", "/v1/me", { token: unknownKey(), ip });
    expect(eleventh.status).toBe(429);
    expect(eleventh.body.error.code).toBe("too_many_failed_attempts");
    const retryAfter = Number(eleventh.headers.get("retry-after"));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);

    const validFromBlocked = await call("GET", "/v1/me", { token: owner, ip });
    expect(validFromBlocked.status).toBe(429);
    const validFromElsewhere = await call("GET", "/v1/me", { token: owner, ip: "198.51.100.23" });
    expect(validFromElsewhere.status).toBe(200);

    const blocks = await dbRows("SELECT workspace_id, ip, detail FROM audit_events WHERE action = 'auth.ip_blocked' AND ip = ?", ip);
    expect(blocks).toHaveLength(1);
    expect(blocks[0].workspace_id).toBeNull();
  });

  it("counts concurrent failures exactly", async () => {
    await awaitFreshMinute();
    const ip = "203.0.113.88";
    const statuses = (await Promise.all(Array.from({ length: 15 }, () => call("GET", "/v1/me", { token: unknownKey(), ip })))).map(
      (r) => r.status,
    );
    expect(statuses.filter((s) => s === 401)).toHaveLength(10);
    expect(statuses.filter((s) => s === 429)).toHaveLength(5);
  });
});

describe("per-key rate limit", () => {
  it("carries RateLimit headers and answers 429 rate_limited past the limit", async () => {
    const { key: owner } = await createWorkspace();
    const limited = await createKey(owner, { rate_limit: { limit: 3, window_seconds: 3600 } });
    const remaining = [];
    for (let i = 0; i < 3; i++) {
      const response = await call("GET", "/v1/me", { token: limited.key });
      expect(response.status).toBe(200);
      expect(response.headers.get("ratelimit-limit")).toBe("3");
      remaining.push(response.headers.get("ratelimit-remaining"));
      expect(Number(response.headers.get("ratelimit-reset"))).toBeGreaterThanOrEqual(1);
      // The IETF draft's pair says the same: policy "key", quota and window; remaining and reset.
      expect(response.headers.get("ratelimit-policy")).toBe('"key";q=3;w=3600');
      expect(response.headers.get("ratelimit")).toBe(`"key";r=${2 - i};t=${response.headers.get("ratelimit-reset")}`);
    }
    expect(remaining).toEqual(["2", "1", "0"]);
    const over = await call("GET", "/v1/me", { token: limited.key });
    expect(over.status).toBe(429);
    expect(over.body.error.code).toBe("rate_limited");
    expect(Number(over.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    expect(over.headers.get("ratelimit-remaining")).toBe("0");
    expect((await call("GET", "/v1/me", { token: owner })).headers.get("ratelimit-limit")).toBeNull();
  });

  it("is exact under concurrency", async () => {
    const { key: owner } = await createWorkspace();
    const limited = await createKey(owner, { rate_limit: { limit: 7, window_seconds: 3600 } });
    const statuses = (await Promise.all(Array.from({ length: 20 }, () => call("GET", "/v1/me", { token: limited.key })))).map(
      (r) => r.status,
    );
    expect(statuses.filter((s) => s === 200)).toHaveLength(7);
    expect(statuses.filter((s) => s === 429)).toHaveLength(13);
  });
});

describe("read-only workspace", () => {
  it("refuses every key write with 403 workspace_read_only and still serves reads", async () => {
    const { key: owner, workspace } = await createWorkspace();
    const other = await createKey(owner);
    await admin("PATCH", `/v1/workspaces/${workspace.id}`, { body: { read_only: true } });
    for (const [method, path, body] of [
      ["POST", "/v1/keys", { name: "x" }],
      ["DELETE", `/v1/keys/${other.id}`],
      ["POST", `/v1/keys/${other.id}/reroll`, {}],
      ["DELETE", `/api/auth/api-keys/${other.id}`],
    ]) {
      const response = await call(method, path, { token: owner, body });
      expect(response.status, `${method} ${path}`).toBe(403);
      expect(response.body.error.code).toBe("workspace_read_only");
    }
    expect((await call("GET", "/v1/keys", { token: owner })).status).toBe(200);
    expect((await call("GET", `/v1/keys/${other.id}`, { token: owner })).status).toBe(200);
    expect((await call("GET", "/v1/me", { token: owner })).body.workspace.read_only).toBe(true);
    expect((await call("POST", "/v1/keys/verify", { token: owner, body: { key: other.key } })).body.code).toBe("VALID");
    expect((await call("GET", "/v1/me", { token: other.key })).status).toBe(200);
  });
});

describe("last_used_at", () => {
  it("is written after a successful request", async () => {
    const { key: owner, ownerKey } = await createWorkspace();
    await call("GET", "/v1/me", { token: owner });
    const row = await lastUseWritten(ownerKey.id);
    expect(row.last_used_at).toEqual(expect.any(Number));
  });
});

describe("audit", () => {
  it("records key.created and key.rerolled without any key", async () => {
    const { key: owner, ownerKey, workspace } = await createWorkspace();
    const created = await createKey(owner, { name: "audited" });
    const rerolled = await call("POST", `/v1/keys/${created.id}/reroll`, { token: owner });
    const events = await dbRows("SELECT * FROM audit_events WHERE workspace_id = ? ORDER BY seq", workspace.id);
    expect(events.map((e) => e.action)).toEqual(["key.created", "key.created", "key.rerolled"]);
    expect(events[1]).toMatchObject({ target: created.id, actor_key_id: ownerKey.id });
    const everything = JSON.stringify(events);
    for (const secret of [owner, created.key, rerolled.body.key]) expect(everything).not.toContain(secret);
  });
});

describe("POST /v1/leaks", () => {
  it("revokes live keys of any workspace at once and labels each token", async () => {
    const a = await createWorkspace();
    const b = await createWorkspace();
    const leakedA = await createKey(a.key);
    const notOurs = "ghp_0123456789abcdefghijklmnopqrstuvwxyz";
    const response = await admin("POST", "/v1/leaks", {
      body: [
        { token: leakedA.key, type: "keywarden_api_key", url: "https://github.com/x/y/blob/main/.env", source: "content" },
        { token: b.key },
        { token: notOurs },
        { token: unknownKey() },
      ],
    });
    expect(response.status).toBe(200);
    expect(response.body).toEqual([
      { token_hash: await sha256Hex(leakedA.key), token_type: "keywarden_api_key", label: "true_positive" },
      { token_hash: await sha256Hex(b.key), token_type: null, label: "true_positive" },
      { token_hash: await sha256Hex(notOurs), token_type: null, label: "false_positive" },
      { token_hash: expect.stringMatching(/^[0-9a-f]{64}$/), token_type: null, label: "false_positive" },
    ]);
    expect((await call("GET", "/v1/me", { token: leakedA.key })).status).toBe(401);
    expect((await call("GET", "/v1/me", { token: b.key })).status).toBe(401);
    expect((await call("GET", "/v1/me", { token: a.key })).status).toBe(200);

    const leaked = await dbRows("SELECT workspace_id, target, detail FROM audit_events WHERE action = 'key.leaked' AND target = ?", leakedA.id);
    expect(leaked.map((e) => e.workspace_id).sort()).toEqual([a.workspace.id, null].sort());
    expect(JSON.stringify(leaked)).not.toContain(leakedA.key);

    // A repeat (a scanner retrying) labels a key a leak report revoked true_positive again.
    const repeat = await admin("POST", "/v1/leaks", { body: [{ token: leakedA.key }] });
    expect(repeat.body[0].label).toBe("true_positive");
  });

  it("requires the admin token and a well-formed report", async () => {
    const { key: owner } = await createWorkspace();
    expect((await call("POST", "/v1/leaks", { token: owner, body: [] })).status).toBe(401);
    const notArray = await admin("POST", "/v1/leaks", { body: { token: "x" } });
    expect(notArray.body.error).toMatchObject({ code: "invalid_request", field: "body" });
    const noToken = await admin("POST", "/v1/leaks", { body: [{ token: "a" }, { url: "https://x" }] });
    expect(noToken.body.error).toMatchObject({ code: "invalid_request", field: "[1].token" });
  });
});

describe("Le Bureau v1 compatibility", () => {
  it("lists keys at /api/auth/api-keys with x-api-key, as /v1/keys does", async () => {
    const { key: owner } = await createWorkspace();
    await createKey(owner, { name: "CI Pipeline" });
    const legacy = await call("GET", "/api/auth/api-keys", { apiKey: owner });
    const modern = await call("GET", "/v1/keys", { token: owner });
    expect(legacy.status).toBe(200);
    // last_used_at is written after each response, so it may differ between the two reads.
    const withoutUse = (body) => ({ ...body, items: body.items.map(({ last_used_at: _, ...rest }) => rest) });
    expect(withoutUse(legacy.body)).toEqual(withoutUse(modern.body));
    expect(legacy.body.items[0]).toMatchObject({ name: "CI Pipeline", masked: expect.any(String), last4: expect.any(String) });
  });

  it("revokes at DELETE /api/auth/api-keys/{id} with immediate effect", async () => {
    const { key: owner } = await createWorkspace();
    const victim = await createKey(owner);
    const response = await call("DELETE", `/api/auth/api-keys/${victim.id}`, { apiKey: owner });
    expect(response.status).toBe(200);
    expect(response.body).toEqual({ id: victim.id, revoked_at: expect.any(String) });
    expect((await call("GET", "/api/auth/api-keys", { apiKey: victim.key })).status).toBe(401);
  });
});
