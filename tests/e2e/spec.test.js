// /healthz and /openapi.json, and a smoke run of every documented operation.
import { describe, expect, it } from "vitest";
import { call } from "./helpers.js";

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
    for (const [method, path] of operations) {
      const answer = await call(method, path, { body: method === "GET" || method === "DELETE" ? undefined : {} });
      expect(answer.status, `${method} ${path}`).toBeLessThan(500);
      expect(answer.status, `${method} ${path} must be routed`).not.toBe(405);
    }
  });
});
