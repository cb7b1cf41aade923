// Security review, issue 10: what a provider or a report can make the Worker hold or lose at
// scale. Model lists past the memory cap, leak reports of 1,000 live keys, and encryption that
// binds each secret to the name it is stored under.
import { createExecutionContext, createScheduledController, env, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import worker from "../../build/index.js";
import { call, createWorkspace, dbRow } from "./helpers.js";

const MOCK = env.MOCK_PROVIDER;
const OPENAI_HOST = `${MOCK}/openai/v1`;
const MIB = 1024 * 1024;
let counter = 0;
const unique = (prefix) => `${prefix}${Date.now().toString(36)}${(counter += 1)}`;

async function runScheduled() {
  const ctx = createExecutionContext();
  await new worker(ctx, env).scheduled(createScheduledController({ cron: "*/5 * * * *", scheduledTime: Date.now() }));
  await waitOnExecutionContext(ctx);
}

async function configureOpenAi(owner, apiKey) {
  return call("PUT", "/v1/providers/openai", { token: owner, body: { api_key: apiKey, api_host: OPENAI_HOST, model: "gpt-4o" } });
}

async function blobsOf(workspaceId) {
  const { keys } = await env.SECRETS.list();
  return keys.map((k) => k.name).filter((name) => name.includes(workspaceId));
}

/** From now on the mock answers `apiKey` with its model list padded to `bytes`. */
async function growList(apiKey, bytes) {
  const response = await fetch(`${MOCK}/__keys/${encodeURIComponent(apiKey)}`, { method: "PUT", body: JSON.stringify({ list_bytes: bytes }) });
  expect(response.status).toBe(204);
}

describe("provider model lists: read within a 4 MiB cap", () => {
  it("reads a list just under 4 MiB for the model at its very end, and refuses one just over it, declared or chunked, storing nothing", async () => {
    const under = await createWorkspace();
    const accepted = await configureOpenAi(under.key, `sk-listbytes-${4 * MIB - 4096}`);
    expect(accepted.status, accepted.text).toBe(200);
    expect(accepted.body).toMatchObject({ status: "valid", model: "gpt-4o", version: 1 });

    for (const apiKey of [`sk-listbytes-${4 * MIB + 4096}`, `sk-listbytes-${4 * MIB + 4096}-chunked`]) {
      const over = await createWorkspace();
      const refused = await configureOpenAi(over.key, apiKey);
      expect(refused.status, `${apiKey}: ${refused.text}`).toBe(502);
      expect(refused.body.error.code).toBe("provider_unavailable");
      expect(await dbRow("SELECT * FROM provider_configs WHERE workspace_id = ?", over.workspace.id)).toBeNull();
      expect(await blobsOf(over.workspace.id)).toEqual([]);
    }
  });

  it("reports provider_unavailable from /validate once the key's list has grown past the cap, keeping the status it had", async () => {
    const { key: owner, workspace } = await createWorkspace();
    const apiKey = unique("sk-grows-");
    expect((await configureOpenAi(owner, apiKey)).status).toBe(200);
    const before = await dbRow("SELECT status, validated_at FROM provider_configs WHERE workspace_id = ?", workspace.id);
    await growList(apiKey, 5 * MIB);

    const validated = await call("POST", "/v1/providers/openai/validate", { token: owner });
    expect(validated.status, validated.text).toBe(200);
    expect(validated.body).toMatchObject({ status: "valid", error: { code: "provider_unavailable" } });
    expect(await dbRow("SELECT status, validated_at FROM provider_configs WHERE workspace_id = ?", workspace.id)).toEqual(before);
  });

  it("leaves status and validated_at alone when the cron's re-validation meets a list past the cap", async () => {
    const { key: owner, workspace } = await createWorkspace();
    const apiKey = unique("sk-grows-");
    expect((await configureOpenAi(owner, apiKey)).status).toBe(200);
    await env.DB.prepare("UPDATE provider_configs SET validated_at = 1000, checked_at = NULL WHERE workspace_id = ?").bind(workspace.id).run();
    await growList(apiKey, 5 * MIB);

    await runScheduled();
    const row = await dbRow("SELECT status, validated_at, checked_at FROM provider_configs WHERE workspace_id = ?", workspace.id);
    expect(row.checked_at, "the cron took the key").toBeGreaterThan(1000);
    expect(row).toMatchObject({ status: "valid", validated_at: 1000 });
  });
});
