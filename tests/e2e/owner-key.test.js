// The owner key a workspace is created with authenticates platform-key routes.
import { describe, expect, it } from "vitest";
import { call, createWorkspace } from "./helpers.js";

describe("GET /v1/me with the owner key", () => {
  it("answers with the key, its workspace and subject, via Bearer", async () => {
    const { key, ownerKey, workspace } = await createWorkspace();
    const response = await call("GET", "/v1/me", { token: key });
    expect(response.status).toBe(200);
    expect(response.body).toEqual({
      key: {
        id: ownerKey.id,
        name: ownerKey.name,
        capabilities: ["*"],
        created_at: ownerKey.created_at,
        expires_at: null,
        last4: key.slice(-4),
        credits: null,
        allowed_ips: null,
      },
      workspace: { id: workspace.id, name: workspace.name, read_only: false },
      subject: null,
    });
  });

  it("accepts the legacy x-api-key header", async () => {
    const { key, ownerKey } = await createWorkspace();
    const response = await call("GET", "/v1/me", { apiKey: key });
    expect(response.status).toBe(200);
    expect(response.body.key.id).toBe(ownerKey.id);
  });

  it("answers 401 for a missing, malformed or unknown key", async () => {
    const { key } = await createWorkspace();
    const flipped = key.slice(0, 10) + (key[10] === "a" ? "b" : "a") + key.slice(11);
    for (const options of [{}, { token: "nonsense" }, { token: flipped }, { apiKey: key.slice(0, -1) }]) {
      const response = await call("GET", "/v1/me", options);
      expect(response.status, JSON.stringify(options)).toBe(401);
      expect(response.body.error.code).toBe("unauthorized");
    }
  });
});
