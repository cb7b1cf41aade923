// HTTP conventions of API.md, asserted on real routes.
import { describe, expect, it, vi, afterEach } from "vitest";
import { ADMIN_TOKEN, admin, call, createWorkspace } from "./helpers.js";

const REQUEST_ID = /^[A-Za-z0-9._-]{1,128}$/;

describe("every response", () => {
  it("carries an x-request-id, on success and on error", async () => {
    for (const response of [
      await call("GET", "/healthz"),
      await call("GET", "/nowhere"),
      await admin("GET", "/v1/workspaces"),
      await call("GET", "/v1/workspaces"),
    ]) {
      expect(response.headers.get("x-request-id"), `status ${response.status}`).toMatch(REQUEST_ID);
    }
  });

  it("gets a fresh request id each time unless the caller sends a plain one", async () => {
    const first = await call("GET", "/healthz");
    const second = await call("GET", "/healthz");
    expect(first.headers.get("x-request-id")).not.toBe(second.headers.get("x-request-id"));
    const traced = await call("GET", "/healthz", { headers: { "x-request-id": "trace-42" } });
    expect(traced.headers.get("x-request-id")).toBe("trace-42");
  });

  it("is JSON", async () => {
    const response = await call("GET", "/nowhere");
    expect(response.headers.get("content-type")).toMatch(/^application\/json/);
  });
});

describe("errors", () => {
  it("answers an unknown path with 404 not_found in the envelope", async () => {
    const response = await call("GET", "/v1/nope");
    expect(response.status).toBe(404);
    expect(response.body).toEqual({ error: { code: "not_found", message: expect.any(String), request_id: expect.any(String) } });
  });

  it("names the request in every error body, as its x-request-id header does", async () => {
    const traced = await call("GET", "/v1/nope", { headers: { "x-request-id": "trace-error-7" } });
    expect(traced.body.error.request_id).toBe("trace-error-7");
    const unauthorized = await call("GET", "/v1/me");
    expect(unauthorized.body.error.request_id).toBe(unauthorized.headers.get("x-request-id"));
  });

  it("answers a method it does not know with 405, never as if it were GET", async () => {
    const { key: owner } = await createWorkspace();
    // Methods are case-sensitive: `patch` is not PATCH (Fetch upper-cases only the six it knows).
    for (const method of ["QUERY", "PROPFIND", "patch"]) {
      const response = await call(method, "/v1/keys", { token: owner });
      expect(response.status, method).toBe(405);
      expect(response.body.error.code, method).toBe("method_not_allowed");
      expect(response.headers.get("allow"), method).toBe("GET, POST");
    }
  });

  it("answers a known path with a wrong method with 405 and an Allow header", async () => {
    const response = await admin("DELETE", "/v1/workspaces");
    expect(response.status).toBe(405);
    expect(response.body.error.code).toBe("method_not_allowed");
    expect(response.headers.get("allow")).toBe("GET, POST");
    const single = await call("POST", "/healthz");
    expect(single.status).toBe(405);
    expect(single.headers.get("allow")).toBe("GET");
  });

  it("answers malformed JSON with 400 invalid_json", async () => {
    const response = await admin("POST", "/v1/workspaces", {
      body: '{"name": "unterminated',
      headers: { "content-type": "application/json" },
    });
    expect(response.status).toBe(400);
    expect(response.body.error.code).toBe("invalid_json");
  });

  it("answers a non-JSON content type with 415 unsupported_media_type", async () => {
    const response = await admin("POST", "/v1/workspaces", {
      body: "name=Acme",
      headers: { "content-type": "application/x-www-form-urlencoded" },
    });
    expect(response.status).toBe(415);
    expect(response.body.error.code).toBe("unsupported_media_type");
  });

  it("answers a body over 64 KiB with 413 payload_too_large", async () => {
    const response = await admin("POST", "/v1/workspaces", { body: { name: "x".repeat(70 * 1024) } });
    expect(response.status).toBe(413);
    expect(response.body.error.code).toBe("payload_too_large");
  });

  it("names the field of a missing, wrongly typed or unknown field", async () => {
    const cases = [
      [{}, "name"],
      [{ name: 42 }, "name"],
      [{ name: "" }, "name"],
      [{ name: "ok", default_capabilities: "keys:read" }, "default_capabilities"],
      [{ name: "ok", default_capabilities: ["Not A Capability"] }, "default_capabilities"],
      [{ name: "ok", colour: "red" }, "colour"],
      [[{ name: "ok" }], "body"],
    ];
    for (const [body, field] of cases) {
      const response = await admin("POST", "/v1/workspaces", { body });
      expect(response.status, JSON.stringify(body)).toBe(400);
      expect(response.body.error, JSON.stringify(body)).toMatchObject({ code: "invalid_request", field });
      expect(response.body.error.message).toEqual(expect.any(String));
    }
  });

  it("never answers hostile input with a 5xx", async () => {
    const { workspace } = await createWorkspace();
    const probes = [
      ["POST", "/v1/workspaces", "null"],
      ["POST", "/v1/workspaces", "[]"],
      ["POST", "/v1/workspaces", '"just a string"'],
      ["POST", "/v1/workspaces", '{"name": "\\u0000"}'],
      ["POST", "/v1/workspaces", '{"name": {"nested": true}}'],
      ["POST", "/v1/workspaces", "\u00ff\u00fe"],
      ["PATCH", `/v1/workspaces/${workspace.id}`, '{"read_only": "true"}'],
      ["PATCH", `/v1/workspaces/${workspace.id}`, '{"default_capabilities": [null]}'],
      ["PATCH", "/v1/workspaces/%00%ff", '{"name": "x"}'],
      ["GET", "/v1/workspaces?limit=-5", undefined],
      ["GET", "/v1/workspaces?cursor=%ff%fe", undefined],
      ["GET", "/v1/workspaces/" + "x".repeat(5000), undefined],
    ];
    for (const [method, path, body] of probes) {
      const response = await admin(method, path, { body, headers: body ? { "content-type": "application/json" } : {} });
      expect(response.status, `${method} ${path} ${body}`).toBeLessThan(500);
      expect(response.body.error?.code ?? "ok", `${method} ${path}`).toMatch(/^[a-z_]+$/);
    }
  });
});

describe("logs", () => {
  afterEach(() => vi.restoreAllMocks());

  it("write one structured JSON line per request and never a secret", async () => {
    const lines = [];
    for (const method of ["log", "info", "warn", "error"]) {
      vi.spyOn(console, method).mockImplementation((...args) => lines.push(args.join(" ")));
    }
    const { key } = await createWorkspace();
    const secretInBody = "sk-ant-api03-SHOULD-NOT-BE-LOGGED";
    await call("GET", "/v1/me", { apiKey: key });
    await call("GET", "/v1/me", { token: "kw_live_wrongwrongwrongwrongwrongwrong000000" });
    await admin("POST", "/v1/workspaces", { body: { name: secretInBody, extra: secretInBody } });
    await call("GET", "/v1/workspaces", { token: "not-the-admin-token" });
    vi.restoreAllMocks();

    const structured = lines
      .map((line) => {
        try {
          return JSON.parse(line);
        } catch {
          return null;
        }
      })
      .filter((entry) => entry && entry.request_id);
    expect(structured.length).toBeGreaterThanOrEqual(4);
    for (const entry of structured) {
      expect(entry).toMatchObject({ request_id: expect.any(String), route: expect.any(String), status: expect.any(Number) });
      expect(entry.duration_ms).toEqual(expect.any(Number));
    }
    const everything = lines.join("\n");
    for (const secret of [key, secretInBody, ADMIN_TOKEN, "not-the-admin-token", "wrongwrongwrong"]) {
      expect(everything).not.toContain(secret);
    }
  });
});
