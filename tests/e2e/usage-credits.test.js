// Issue 16 in workerd with the key authority: IP allowlists, credits (exact under concurrency,
// refilled when the interval turns) and usage counted per key and hour, many keys in one call.
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { call, createKey, createWorkspace, dbRow, dbRows, sleep, eventually } from "./helpers.js";

const verify = (owner, key, extra = {}) => call("POST", "/v1/keys/verify", { token: owner, body: { key, ...extra } });

describe("IP allowlists", () => {
  it("normalises the list and shows it on the key", async () => {
    const { key: owner } = await createWorkspace();
    const made = await createKey(owner, { allowed_ips: ["203.0.113.7/32", "10.1.2.3/8", "2001:DB8::1", "::ffff:198.51.100.9", "10.0.0.0/8"] });
    expect(made.allowed_ips).toEqual(["203.0.113.7", "10.0.0.0/8", "2001:db8::1", "198.51.100.9"]);
    expect((await call("GET", `/v1/keys/${made.id}`, { token: owner })).body.allowed_ips).toEqual(made.allowed_ips);
    const row = await dbRow("SELECT allowed_ips FROM api_keys WHERE id = ?", made.id);
    expect(JSON.parse(row.allowed_ips)).toEqual(made.allowed_ips);
  });

  it("refuses malformed entries and more than 32, naming the entry", async () => {
    const { key: owner } = await createWorkspace();
    for (const allowed_ips of [["10.0.0.0/33"], ["example.com"], Array.from({ length: 33 }, (_, i) => `192.0.2.${i}`)]) {
      const refused = await call("POST", "/v1/keys", { token: owner, body: { name: "x", allowed_ips } });
      expect(refused.status, JSON.stringify(allowed_ips)).toBe(400);
      expect(refused.body.error).toMatchObject({ code: "invalid_request", field: "allowed_ips" });
    }
  });

  it("admits IPv4 and IPv6 clients on the list and refuses others with 403 ip_not_allowed, never as a failed attempt", async () => {
    const { key: owner } = await createWorkspace();
    const pinned = await createKey(owner, { allowed_ips: ["192.0.2.0/24", "2001:db8::/32"] });
    expect((await call("GET", "/v1/me", { token: pinned.key, ip: "192.0.2.77" })).status).toBe(200);
    expect((await call("GET", "/v1/me", { token: pinned.key, ip: "2001:db8:1::5" })).status).toBe(200);
    expect((await call("GET", "/v1/me", { token: pinned.key, ip: "::ffff:192.0.2.8" })).status, "mapped IPv4").toBe(200);
    const stranger = "198.51.100.23";
    for (let i = 0; i < 12; i++) {
      const refused = await call("GET", "/v1/me", { token: pinned.key, ip: stranger });
      expect(refused.status).toBe(403);
      expect(refused.body.error).toMatchObject({ code: "ip_not_allowed", message: "This key may not be used from this address." });
    }
    expect((await call("GET", "/v1/me", { token: owner, ip: stranger })).status, "the address is not blocked").toBe(200);
    expect((await call("GET", "/v1/me", { token: pinned.key, ip: "2001:db9::1" })).status).toBe(403);
    const anywhere = await createKey(owner, { allowed_ips: ["0.0.0.0/0"] });
    expect((await call("GET", "/v1/me", { token: anywhere.key, ip: "2606:4700::1111" })).status, "0.0.0.0/0 means any address").toBe(200);
  });

  it("checks a verify's ip against the list only when one is given", async () => {
    const { key: owner } = await createWorkspace();
    const pinned = await createKey(owner, { allowed_ips: ["2001:db8::/32", "203.0.113.7"] });
    expect((await verify(owner, pinned.key, { ip: "203.0.113.8" })).body).toMatchObject({ valid: false, code: "IP_NOT_ALLOWED", key_id: pinned.id });
    expect((await verify(owner, pinned.key, { ip: "2001:db8::9" })).body).toMatchObject({ valid: true, code: "VALID" });
    expect((await verify(owner, pinned.key)).body).toMatchObject({ valid: true, code: "VALID" });
    const bad = await verify(owner, pinned.key, { ip: "not-an-ip" });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatchObject({ code: "invalid_request", field: "ip" });
  });

  it("is carried by a reroll", async () => {
    const { key: owner } = await createWorkspace();
    const pinned = await createKey(owner, { allowed_ips: ["192.0.2.1"] });
    const successor = await call("POST", `/v1/keys/${pinned.id}/reroll`, { token: owner, body: {} });
    expect(successor.body.allowed_ips).toEqual(["192.0.2.1"]);
    expect((await call("GET", "/v1/me", { token: successor.body.key, ip: "192.0.2.2" })).status).toBe(403);
  });
});

describe("credits", () => {
  it("spends one per request, shows the balance on /v1/me and answers 429 credits_exhausted when spent", async () => {
    const { key: owner } = await createWorkspace();
    const metered = await createKey(owner, { credits: { remaining: 2 } });
    expect(metered.credits).toEqual({ remaining: 2, refill: null });
    expect((await call("GET", "/v1/me", { token: metered.key })).body.key.credits).toEqual({ remaining: 1, refill: null });
    expect((await call("GET", "/v1/me", { token: metered.key })).body.key.credits).toEqual({ remaining: 0, refill: null });
    const spent = await call("GET", "/v1/me", { token: metered.key });
    expect(spent.status).toBe(429);
    expect(spent.body.error).toMatchObject({ code: "credits_exhausted", message: "This key has no credits left for this request." });
    expect((await call("GET", `/v1/keys/${metered.id}`, { token: owner })).body.credits).toEqual({ remaining: 0, refill: null });
  });

  it("a request refused for a missing capability spends nothing", async () => {
    const { key: owner } = await createWorkspace();
    const reader = await createKey(owner, { capabilities: ["providers:read"], credits: { remaining: 1 } });
    const refused = await call("GET", "/v1/keys", { token: reader.key });
    expect(refused.body.error).toMatchObject({ code: "missing_capability", required: "keys:read" });
    expect((await call("GET", "/v1/providers", { token: reader.key })).status).toBe(200);
    expect((await call("GET", "/v1/providers", { token: reader.key })).status, "the one credit went to the allowed request").toBe(429);
  });

  it("gives exactly 100 VALID and 100 USAGE_EXCEEDED for 200 parallel verifies of cost 3 against 300", async () => {
    const { key: owner } = await createWorkspace();
    const metered = await createKey(owner, { credits: { remaining: 300 } });
    const answers = await Promise.all(Array.from({ length: 200 }, () => verify(owner, metered.key, { cost: 3 })));
    const codes = answers.map((a) => a.body.code);
    expect(codes.filter((c) => c === "VALID")).toHaveLength(100);
    expect(codes.filter((c) => c === "USAGE_EXCEEDED")).toHaveLength(100);
    const remaining = answers.map((a) => a.body.credits.remaining);
    expect(Math.min(...remaining), "never below zero").toBe(0);
    expect((await call("GET", `/v1/keys/${metered.id}`, { token: owner })).body.credits.remaining).toBe(0);
    expect((await verify(owner, metered.key, { cost: 0 })).body.code, "a cost of 0 always fits").toBe("VALID");
    await eventually(
      () => dbRow("SELECT credits_remaining FROM api_keys WHERE id = ?", metered.id),
      (row) => row.credits_remaining === 0,
      "the balance written to D1",
      { attempts: 80, pauseMs: 100 },
    );
  });

  it("lists each key's live balance right after it was spent", async () => {
    const { key: owner } = await createWorkspace();
    const spent = await createKey(owner, { name: "spent", credits: { remaining: 10 } });
    const untouched = await createKey(owner, { name: "untouched", credits: { remaining: 4 } });
    const plain = await createKey(owner, { name: "plain" });
    await Promise.all([verify(owner, spent.key, { cost: 3 }), verify(owner, spent.key, { cost: 3 })]);
    const listed = await call("GET", "/v1/keys", { token: owner });
    const byId = Object.fromEntries(listed.body.items.map((key) => [key.id, key]));
    expect(byId[spent.id].credits).toEqual({ remaining: 4, refill: null });
    expect(byId[untouched.id].credits).toEqual({ remaining: 4, refill: null });
    expect(byId[plain.id].credits).toBeNull();
  });

  it("refuses a cost outside 0 to 1000", async () => {
    const { key: owner } = await createWorkspace();
    const metered = await createKey(owner, { credits: { remaining: 3 } });
    for (const cost of [-1, 1001, 1.5]) {
      const refused = await verify(owner, metered.key, { cost });
      expect(refused.status, String(cost)).toBe(400);
      expect(refused.body.error).toMatchObject({ code: "invalid_request", field: "cost" });
    }
  });

  it("refills to the amount when the interval turns (a test day of 3 s)", async () => {
    const { key: owner } = await createWorkspace();
    const day = () => Math.floor(Date.now() / 3000);
    // Start early in a test day, so creating the key and spending it usually fit in that day.
    if (Date.now() % 3000 > 1500) await sleep(3000 - (Date.now() % 3000) + 50);
    const start = day();
    const metered = await createKey(owner, { credits: { remaining: 1, refill: { amount: 3, interval: "day" } } });
    expect(metered.credits).toEqual({ remaining: 1, refill: { amount: 3, interval: "day" } });
    const first = await verify(owner, metered.key);
    const second = await verify(owner, metered.key);
    // Judged only when all of it happened in one test day: a refill in between would be right.
    if (day() === start) {
      expect(first.body.code).toBe("VALID");
      expect(second.body.code, "the one credit is spent").toBe("USAGE_EXCEEDED");
    }
    // Wait for the next "day" to start, then the balance is the refill amount again.
    await sleep(3000 - (Date.now() % 3000) + 200);
    const refilled = await verify(owner, metered.key);
    expect(refilled.body).toMatchObject({ code: "VALID", credits: { remaining: 2 } });
  });

  it("adds or sets credits, needs exactly one of add or set, and audits the change", async () => {
    const { key: owner, workspace } = await createWorkspace();
    const metered = await createKey(owner, { credits: { remaining: 5 } });
    const added = await call("POST", `/v1/keys/${metered.id}/credits`, { token: owner, body: { add: 10 } });
    expect(added.status, added.text).toBe(200);
    expect(added.body.credits).toEqual({ remaining: 15, refill: null });
    const set = await call("POST", `/v1/keys/${metered.id}/credits`, { token: owner, body: { set: 1 } });
    expect(set.body.credits.remaining).toBe(1);
    expect((await call("GET", "/v1/me", { token: metered.key })).body.key.credits.remaining).toBe(0);
    for (const [body, field] of [[{}, "add"], [{ add: 1, set: 1 }, "set"], [{ add: 0 }, "add"], [{ set: -1 }, "set"]]) {
      const refused = await call("POST", `/v1/keys/${metered.id}/credits`, { token: owner, body });
      expect(refused.status, JSON.stringify(body)).toBe(400);
      expect(refused.body.error).toMatchObject({ code: "invalid_request", field });
    }
    const plain = await createKey(owner);
    const metering = await call("POST", `/v1/keys/${plain.id}/credits`, { token: owner, body: { set: 4 } });
    expect(metering.body.credits, "an unmetered key becomes metered").toEqual({ remaining: 4, refill: null });
    expect((await call("POST", "/v1/keys/key_nope/credits", { token: owner, body: { add: 1 } })).status).toBe(404);
    const audit = await dbRows("SELECT detail FROM audit_events WHERE workspace_id = ? AND action = 'key.credits_changed'", workspace.id);
    expect(audit.map((a) => JSON.parse(a.detail))).toEqual(expect.arrayContaining([{ add: 10, remaining: 15 }, { set: 1, remaining: 1 }]));
  });

  it("adds once for a retried add with the same Idempotency-Key", async () => {
    const { key: owner } = await createWorkspace();
    const metered = await createKey(owner, { credits: { remaining: 1 } });
    const headers = { "idempotency-key": `credits-${metered.id}` };
    const first = await call("POST", `/v1/keys/${metered.id}/credits`, { token: owner, body: { add: 5 }, headers });
    const retried = await call("POST", `/v1/keys/${metered.id}/credits`, { token: owner, body: { add: 5 }, headers });
    expect(first.body.credits.remaining).toBe(6);
    expect(retried.headers.get("idempotent-replayed")).toBe("true");
    expect(retried.body).toEqual(first.body);
    expect((await call("GET", `/v1/keys/${metered.id}`, { token: owner })).body.credits.remaining, "added once").toBe(6);
    const other = await call("POST", `/v1/keys/${metered.id}/credits`, { token: owner, body: { add: 7 }, headers });
    expect(other.status).toBe(409);
    expect(other.body.error.code).toBe("idempotency_conflict");
  });

  it("refuses malformed credits at creation, naming the field", async () => {
    const { key: owner } = await createWorkspace();
    const cases = [
      [{ remaining: -1 }, "credits.remaining"],
      [{}, "credits.remaining"],
      [{ remaining: 1, refill: { amount: 0, interval: "day" } }, "credits.refill.amount"],
      [{ remaining: 1, refill: { amount: 5, interval: "week" } }, "credits.refill.interval"],
    ];
    for (const [credits, field] of cases) {
      const refused = await call("POST", "/v1/keys", { token: owner, body: { name: "x", credits } });
      expect(refused.status, JSON.stringify(credits)).toBe(400);
      expect(refused.body.error).toMatchObject({ code: "invalid_request", field });
    }
  });

  it("is carried by a reroll", async () => {
    const { key: owner } = await createWorkspace();
    const metered = await createKey(owner, { credits: { remaining: 7, refill: { amount: 7, interval: "month" } } });
    await call("GET", "/v1/me", { token: metered.key });
    await call("GET", "/v1/me", { token: metered.key });
    // At once: the live balance, not D1's copy, which the object writes a second later.
    const successor = await call("POST", `/v1/keys/${metered.id}/reroll`, { token: owner, body: {} });
    expect(successor.body.credits).toEqual({ remaining: 5, refill: { amount: 7, interval: "month" } });
  });

  it("loses no credits to rerolls racing each other: the one successor holds the whole balance", async () => {
    const { key: owner } = await createWorkspace();
    // A monthly refill: the suite's test day (CREDIT_DAY_MS, 3 s) could turn during the test.
    const metered = await createKey(owner, { credits: { remaining: 50, refill: { amount: 60, interval: "month" } } });
    const answers = await Promise.all(
      Array.from({ length: 4 }, () => call("POST", `/v1/keys/${metered.id}/reroll`, { token: owner, body: {} })),
    );
    const made = answers.filter((a) => a.status === 201);
    expect(made, JSON.stringify(answers.map((a) => a.status))).toHaveLength(1);
    for (const lost of answers.filter((a) => a.status !== 201)) expect(lost.body.error.code).toBe("already_rerolled");
    const successor = await call("GET", `/v1/keys/${made[0].body.id}`, { token: owner });
    expect(successor.body.credits).toEqual({ remaining: 50, refill: { amount: 60, interval: "month" } });
    const old = await call("GET", `/v1/keys/${metered.id}`, { token: owner });
    expect(old.body.credits).toEqual({ remaining: 0, refill: null });
    const stored = await dbRow("SELECT credits_remaining, credits_refill_amount FROM api_keys WHERE id = ?", metered.id);
    expect(stored, "D1's copy of the old key keeps no refill").toEqual({ credits_remaining: 0, credits_refill_amount: null });
  });
});

describe("usage", () => {
  it("shows every use answered before the read, with no wait for the authority's flush", async () => {
    const { key: owner } = await createWorkspace();
    const busy = await createKey(owner, { name: "busy" });
    for (let round = 1; round <= 3; round++) {
      await Promise.all(Array.from({ length: 10 }, () => verify(owner, busy.key)));
      const one = await call("GET", `/v1/keys/${busy.id}/usage`, { token: owner });
      expect(one.body.buckets.reduce((sum, b) => sum + b.valid, 0), `after round ${round}`).toBe(10 * round);
    }
    const stored = await dbRow("SELECT SUM(valid) AS valid FROM key_usage WHERE key_id = ?", busy.id);
    expect(stored.valid, "the read brought D1's copy up to date").toBe(30);
  });

  it("counts every use by outcome and returns many keys in one call", async () => {
    const { key: owner } = await createWorkspace();
    const plain = await createKey(owner, { name: "plain" });
    const limited = await createKey(owner, { name: "limited", rate_limit: { limit: 2, window_seconds: 3600 } });
    const pinned = await createKey(owner, { name: "pinned", allowed_ips: ["192.0.2.1"], credits: { remaining: 1 }, capabilities: ["providers:read"] });
    for (let i = 0; i < 3; i++) await call("GET", "/v1/me", { token: plain.key });
    for (let i = 0; i < 3; i++) await call("GET", "/v1/me", { token: limited.key });
    await call("GET", "/v1/providers", { token: pinned.key, ip: "192.0.2.1" }); // valid, spends the credit
    await call("GET", "/v1/providers", { token: pinned.key, ip: "192.0.2.1" }); // credits_exhausted
    await call("GET", "/v1/providers", { token: pinned.key, ip: "192.0.2.9" }); // ip_not_allowed
    await call("GET", "/v1/keys", { token: pinned.key, ip: "192.0.2.1" }); // insufficient_capabilities
    await verify(owner, plain.key, { capabilities: ["desktop:chat"] }); // insufficient_capabilities

    const totals = (item) =>
      item.buckets.reduce(
        (sum, b) => {
          for (const name of Object.keys(sum)) sum[name] += b[name];
          return sum;
        },
        { valid: 0, rate_limited: 0, credits_exhausted: 0, insufficient_capabilities: 0, ip_not_allowed: 0 },
      );
    // Read at once: the key authority writes what it counted before the read is answered.
    const usage = await call("GET", "/v1/keys/usage", { token: owner });
    expect(usage.status).toBe(200);
    expect(usage.body.granularity).toBe("hour");
    const byId = Object.fromEntries(usage.body.items.map((item) => [item.key_id, item]));
    expect(Object.keys(byId)).toEqual(expect.arrayContaining([plain.id, limited.id, pinned.id]));
    expect(byId[pinned.id].name).toBe("pinned");
    expect(totals(byId[plain.id])).toEqual({ valid: 3, rate_limited: 0, credits_exhausted: 0, insufficient_capabilities: 1, ip_not_allowed: 0 });
    expect(totals(byId[limited.id])).toEqual({ valid: 2, rate_limited: 1, credits_exhausted: 0, insufficient_capabilities: 0, ip_not_allowed: 0 });
    expect(totals(byId[pinned.id])).toEqual({ valid: 1, rate_limited: 0, credits_exhausted: 1, insufficient_capabilities: 1, ip_not_allowed: 1 });
    expect(byId[plain.id].buckets[0].start).toMatch(/T\d\d:00:00Z$/);

    const one = await call("GET", `/v1/keys/${limited.id}/usage?granularity=day`, { token: owner });
    expect(one.status).toBe(200);
    expect(one.body).toMatchObject({ key_id: limited.id, name: "limited", granularity: "day" });
    expect(one.body.buckets).toHaveLength(1);
    expect(one.body.buckets[0]).toMatchObject({ valid: 2, rate_limited: 1, start: expect.stringMatching(/T00:00:00Z$/) });
    expect(one.body.items, "also as the list's page of one key").toEqual([{ key_id: limited.id, name: "limited", buckets: one.body.buckets }]);
    expect(one.body.next_cursor).toBeNull();
    const stored = await dbRows("SELECT valid, rate_limited FROM key_usage WHERE key_id = ?", limited.id);
    expect(stored).toEqual([{ valid: 2, rate_limited: 1 }]);
  });

  it("takes from and to as RFC 3339 or as Unix seconds or milliseconds, the same window", async () => {
    const { key: owner } = await createWorkspace();
    const hour = 3600_000;
    const start = Math.floor(Date.now() / hour) * hour - 2 * hour;
    const iso = new Date(start).toISOString().replace(/\.\d+Z$/, "Z");
    const isoEnd = new Date(start + 2 * hour).toISOString().replace(/\.\d+Z$/, "Z");
    for (const [from, to] of [[iso, isoEnd], [start / 1000, (start + 2 * hour) / 1000], [start, start + 2 * hour]]) {
      const answer = await call("GET", `/v1/keys/usage?from=${from}&to=${to}`, { token: owner });
      expect(answer.status, `${from}..${to}`).toBe(200);
      expect(answer.body).toMatchObject({ from: iso, to: isoEnd, granularity: "hour" });
    }
    const refused = await call("GET", "/v1/keys/usage?from=1795369214.5", { token: owner });
    expect(refused.body.error).toMatchObject({ code: "invalid_request", field: "from" });
  });

  it("pages by key and refuses bad ranges and granularities", async () => {
    const { key: owner } = await createWorkspace();
    await createKey(owner, { name: "a" });
    await createKey(owner, { name: "b" });
    const first = await call("GET", "/v1/keys/usage?limit=2", { token: owner });
    expect(first.body.items).toHaveLength(2);
    expect(first.body.next_cursor).toEqual(expect.any(String));
    const rest = await call("GET", `/v1/keys/usage?limit=2&cursor=${encodeURIComponent(first.body.next_cursor)}`, { token: owner });
    expect(rest.body.items).toHaveLength(1);
    expect(rest.body.next_cursor).toBeNull();
    const now = Date.now();
    const iso = (ms) => new Date(ms).toISOString().replace(/\.\d+Z$/, "Z");
    const cases = [
      [`granularity=minute`, "granularity"],
      [`from=yesterday`, "from"],
      [`from=${iso(now)}&to=${iso(now - 7200_000)}`, "from"],
      [`from=${iso(now - 8 * 86400_000)}&to=${iso(now)}`, "from"],
    ];
    for (const [query, field] of cases) {
      const refused = await call("GET", `/v1/keys/usage?${query}`, { token: owner });
      expect(refused.status, query).toBe(400);
      expect(refused.body.error).toMatchObject({ code: "invalid_request", field });
    }
    const reader = await createKey(owner, { capabilities: ["providers:read"] });
    expect((await call("GET", "/v1/keys/usage", { token: reader.key })).body.error).toMatchObject({ code: "missing_capability", required: "keys:read" });
    expect((await call("GET", "/v1/keys/key_nope/usage", { token: owner })).status).toBe(404);
  });
});
