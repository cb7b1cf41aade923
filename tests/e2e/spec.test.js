// /healthz and /openapi.json, and a smoke run of every documented operation.
import { describe, expect, it } from "vitest";
import { ADMIN_TOKEN, call, createWorkspace } from "./helpers.js";

describe("GET /healthz", () => {
  it("answers ok with the version", async () => {
    const response = await call("GET", "/healthz");
    expect(response.status).toBe(200);
    expect(response.body).toEqual({ status: "ok", version: expect.stringMatching(/^\d+\.\d+\.\d+/) });
  });
});

describe("GET /openapi.json", () => {
  it("serves an OpenAPI 3.1 document whose every operation answers without a 5xx", async () => {
    const response = await call("GET", "/openapi.json");
    expect(response.status).toBe(200);
    expect(response.body.openapi).toBe("3.1.0");
    const operations = Object.entries(response.body.paths).flatMap(([path, item]) =>
      Object.keys(item)
        .filter((method) => method !== "parameters")
        .map((method) => [method.toUpperCase(), path.replace("{id}", "x_unknown")]),
    );
    expect(operations.length).toBeGreaterThanOrEqual(16);
    // Each operation once with the operator's token and once with an owner key, so that the
    // calls get past authentication into the handlers.
    const { key: ownerKey } = await createWorkspace();
    for (const token of [ADMIN_TOKEN, ownerKey]) {
      for (const [method, path] of operations) {
        const body = method === "GET" || method === "DELETE" ? undefined : {};
        const answer = await call(method, path, { token, body });
        expect(answer.status, `${method} ${path}`).toBeLessThan(500);
        expect(answer.status, `${method} ${path} must be routed`).not.toBe(405);
      }
    }
  });
});
