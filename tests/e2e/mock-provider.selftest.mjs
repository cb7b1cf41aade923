// Self-test of the mock provider: `node tests/e2e/mock-provider.selftest.mjs`. Exits 0 when
// every check passes, 1 otherwise. It is not a vitest file on purpose: it runs in plain Node,
// where the mock runs, not inside workerd.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { startMockProvider } from "./mock-provider.mjs";

const AZURE_QUERY = "?api-version=2024-10-21";
const ANTHROPIC_HEADERS = { "anthropic-version": "2023-06-01" };

const bearer = (key) => ({ authorization: `Bearer ${key}` });
const anthropic = (key) => ({ "x-api-key": key, ...ANTHROPIC_HEADERS });
const sigv4 = (akid) => ({
  authorization: `AWS4-HMAC-SHA256 Credential=${akid}/20250101/us-east-1/bedrock/aws4_request, SignedHeaders=host;x-amz-date, Signature=abc123`,
  "x-amz-date": "20250101T000000Z",
});

let server;
const results = [];

async function get(path, headers = {}, init = {}) {
  const response = await fetch(server.url + path, { headers, ...init });
  const text = await response.text();
  return { status: response.status, headers: response.headers, text, body: text ? JSON.parse(text) : undefined };
}

async function check(name, fn) {
  try {
    await fn();
    results.push([name, null]);
  } catch (error) {
    results.push([name, error]);
  }
}

const ids = (list) => list.map((model) => model.id);

// ---------------------------------------------------------------------------------------------

async function controlRoutes() {
  await check("DELETE /__requests clears, 204", async () => {
    await get("/models", bearer("sk-x"));
    const cleared = await fetch(server.url + "/__requests", { method: "DELETE" });
    assert.equal(cleared.status, 204);
    assert.deepEqual((await get("/__requests")).body, []);
  });

  await check("requests are recorded with method, path, query, headers, body, at; newest last", async () => {
    await fetch(server.url + "/__requests", { method: "DELETE" });
    await get("/openai/v1/models?a=1&b=2", bearer("sk-first"));
    await fetch(server.url + "/anything", { method: "POST", body: "hello", headers: { "X-Mixed-Case": "v" } });
    const { status, body } = await get("/__requests");
    assert.equal(status, 200);
    assert.equal(body.length, 2, "control routes are not recorded");
    const [first, second] = body;
    assert.equal(first.method, "GET");
    assert.equal(first.path, "/openai/v1/models");
    assert.deepEqual(first.query, { a: "1", b: "2" });
    assert.equal(first.headers.authorization, "Bearer sk-first");
    assert.equal(first.body, "");
    assert.ok(!Number.isNaN(Date.parse(first.at)));
    assert.equal(second.method, "POST");
    assert.equal(second.body, "hello");
    assert.equal(second.headers["x-mixed-case"], "v");
  });
}

async function openAiStyle() {
  await check("OpenAI style: success on /models and any prefix, key from each header", async () => {
    for (const [path, headers] of [
      ["/models", bearer("sk-good")],
      ["/openai/v1/models", bearer("sk-good")],
      // x-api-key off a /v1/models path is not Anthropic's request, so it stays OpenAI style.
      ["/compat/models", { "x-api-key": "sk-good" }],
      ["/custom/models", { "api-key": "good" }],
    ]) {
      const { status, body } = await get(path, headers);
      assert.equal(status, 200, path);
      assert.equal(body.object, "list");
      assert.deepEqual(ids(body.data), ["gpt-4o", "gpt-4o-mini", "gpt-4o-2024-08-06", "o3-mini", "deepseek-chat"]);
      assert.deepEqual(body.data[0], { id: "gpt-4o", object: "model", created: 1715367049, owned_by: "system" });
    }
  });

  await check("OpenAI style: invalid and missing key -> 401 invalid_api_key", async () => {
    for (const headers of [bearer("sk-invalid-1"), {}]) {
      const { status, body } = await get("/v1/models", headers);
      assert.equal(status, 401);
      assert.deepEqual(body, {
        error: {
          message:
            "Incorrect API key provided: sk-****. You can find your API key at https://platform.openai.com/account/api-keys.",
          type: "invalid_request_error",
          param: null,
          code: "invalid_api_key",
        },
      });
    }
  });

  await check("OpenAI style: families are case-sensitive outside Bedrock", async () => {
    assert.equal((await get("/v1/models", bearer("sk-INVALID"))).status, 200);
  });

  await check("OpenAI style: quota -> 429 insufficient_quota", async () => {
    const { status, body, headers } = await get("/v1/models", bearer("sk-quota"));
    assert.equal(status, 429);
    assert.equal(body.error.code, "insufficient_quota");
    assert.equal(body.error.type, "insufficient_quota");
    assert.equal(headers.get("retry-after"), null);
  });

  await check("OpenAI style: ratelimit -> 429 rate_limit_exceeded, retry-after 7", async () => {
    const { status, body, headers } = await get("/v1/models", bearer("sk-ratelimit"));
    assert.equal(status, 429);
    assert.deepEqual(body, {
      error: { message: "Rate limit reached for requests", type: "requests", param: null, code: "rate_limit_exceeded" },
    });
    assert.equal(headers.get("retry-after"), "7");
  });

  await check("OpenAI style: overloaded -> 503, servererror -> 500 JSON", async () => {
    const overloaded = await get("/v1/models", bearer("sk-overloaded"));
    assert.equal(overloaded.status, 503);
    assert.equal(typeof overloaded.body.error.message, "string");
    const failed = await get("/v1/models", bearer("sk-servererror"));
    assert.equal(failed.status, 500);
    assert.equal(failed.body.error.type, "server_error");
  });

  await check("family order: the first listed substring wins", async () => {
    assert.equal((await get("/v1/models", bearer("invalid-quota"))).status, 401);
    assert.equal((await get("/v1/models", bearer("quota-invalid"))).status, 401);
    assert.equal((await get("/v1/models", bearer("ratelimit-servererror"))).status, 429);
  });
}

async function gemini() {
  await check("Gemini: success ids under /v1beta/openai/", async () => {
    for (const path of ["/v1beta/openai/models", "/gemini/v1beta/openai/models"]) {
      const { status, body } = await get(path, bearer("AIza-good"));
      assert.equal(status, 200);
      assert.deepEqual(ids(body.data), ["models/gemini-2.5-flash", "models/gemini-2.5-pro", "models/gemini-2.0-flash"]);
    }
  });

  await check("Gemini: invalid -> 400 array API_KEY_INVALID", async () => {
    const { status, body } = await get("/v1beta/openai/models", bearer("AIza-invalid"));
    assert.equal(status, 400);
    assert.deepEqual(body, [
      {
        error: {
          code: 400,
          message: "API key not valid. Please pass a valid API key.",
          status: "INVALID_ARGUMENT",
          details: [
            {
              "@type": "type.googleapis.com/google.rpc.ErrorInfo",
              reason: "API_KEY_INVALID",
              domain: "googleapis.com",
              metadata: { service: "generativelanguage.googleapis.com" },
            },
          ],
        },
      },
    ]);
  });

  await check("Gemini: quota and ratelimit -> 429 RESOURCE_EXHAUSTED", async () => {
    const quota = await get("/v1beta/openai/models", bearer("AIza-quota"));
    assert.equal(quota.status, 429);
    assert.equal(quota.body[0].error.status, "RESOURCE_EXHAUSTED");
    assert.match(quota.body[0].error.message, /exceeded your current quota/);
    const limited = await get("/v1beta/openai/models", bearer("AIza-ratelimit"));
    assert.equal(limited.status, 429);
    assert.equal(limited.body[0].error.status, "RESOURCE_EXHAUSTED");
    assert.equal(limited.headers.get("retry-after"), "7");
    assert.equal((await get("/v1beta/openai/models", bearer("AIza-overloaded"))).status, 503);
    assert.equal((await get("/v1beta/openai/models", bearer("AIza-servererror"))).status, 500);
  });
}

async function anthropicRoutes() {
  await check("Anthropic: success with x-api-key and anthropic-version, any prefix", async () => {
    for (const path of ["/v1/models", "/anthropic/v1/models"]) {
      const { status, body } = await get(path, anthropic("sk-ant-good"));
      assert.equal(status, 200);
      assert.deepEqual(ids(body.data), ["claude-sonnet-4-5-20250929", "claude-opus-4-1-20250805", "claude-3-5-haiku-20241022"]);
      assert.deepEqual(body.data[0], {
        type: "model",
        id: "claude-sonnet-4-5-20250929",
        display_name: "Claude Sonnet 4.5",
        created_at: "2025-09-29T00:00:00Z",
      });
      assert.equal(body.has_more, false);
      assert.equal(body.first_id, "claude-sonnet-4-5-20250929");
      assert.equal(body.last_id, "claude-3-5-haiku-20241022");
    }
  });

  await check("Anthropic: missing or wrong anthropic-version -> 400, before the key", async () => {
    const missing = await get("/v1/models", { "x-api-key": "sk-ant-invalid" });
    assert.equal(missing.status, 400);
    assert.deepEqual(missing.body, {
      type: "error",
      error: { type: "invalid_request_error", message: "anthropic-version: header is required" },
    });
    const wrong = await get("/v1/models", { "x-api-key": "sk-ant-good", "anthropic-version": "2099-01-01" });
    assert.equal(wrong.status, 400);
    assert.equal(wrong.body.error.type, "invalid_request_error");
  });

  await check("Anthropic: invalid 401, quota 400, ratelimit 429, overloaded 529, servererror 500", async () => {
    const invalid = await get("/v1/models", anthropic("sk-ant-invalid"));
    assert.equal(invalid.status, 401);
    assert.deepEqual(invalid.body, { type: "error", error: { type: "authentication_error", message: "invalid x-api-key" } });

    const quota = await get("/v1/models", anthropic("sk-ant-quota"));
    assert.equal(quota.status, 400);
    assert.equal(quota.body.error.type, "invalid_request_error");
    assert.match(quota.body.error.message, /^Your credit balance is too low to access the Anthropic API\./);

    const limited = await get("/v1/models", anthropic("sk-ant-ratelimit"));
    assert.equal(limited.status, 429);
    assert.equal(limited.body.error.type, "rate_limit_error");
    assert.equal(limited.headers.get("retry-after"), "7");

    const overloaded = await get("/v1/models", anthropic("sk-ant-overloaded"));
    assert.equal(overloaded.status, 529);
    assert.deepEqual(overloaded.body, { type: "error", error: { type: "overloaded_error", message: "Overloaded" } });

    const failed = await get("/v1/models", anthropic("sk-ant-servererror"));
    assert.equal(failed.status, 500);
    assert.equal(failed.body.type, "error");
  });
}

async function openRouter() {
  await check("OpenRouter /key: success on /api/v1/key and /key", async () => {
    for (const path of ["/api/v1/key", "/key", "/openrouter/api/v1/key"]) {
      const { status, body } = await get(path, bearer("sk-or-v1-good"));
      assert.equal(status, 200, path);
      assert.deepEqual(body, {
        data: {
          label: "sk-or-v1-abc...xyz",
          limit: null,
          usage: 0.42,
          is_free_tier: false,
          limit_remaining: null,
          rate_limit: { requests: -1, interval: "10s" },
        },
      });
    }
  });

  await check("OpenRouter /key: exhausted -> 200 with limit_remaining 0", async () => {
    const { status, body } = await get("/api/v1/key", bearer("sk-or-v1-exhausted"));
    assert.equal(status, 200);
    assert.equal(body.data.limit, 10);
    assert.equal(body.data.usage, 10);
    assert.equal(body.data.limit_remaining, 0);
  });

  await check("OpenRouter /key: invalid 401, quota 402, ratelimit 429", async () => {
    const invalid = await get("/api/v1/key", bearer("sk-or-v1-invalid"));
    assert.equal(invalid.status, 401);
    assert.deepEqual(invalid.body, { error: { message: "No auth credentials found", code: 401 } });
    const quota = await get("/api/v1/key", bearer("sk-or-v1-quota"));
    assert.equal(quota.status, 402);
    assert.deepEqual(quota.body, { error: { message: "Insufficient credits", code: 402 } });
    const limited = await get("/api/v1/key", bearer("sk-or-v1-ratelimit"));
    assert.equal(limited.status, 429);
    assert.equal(limited.headers.get("retry-after"), "7");
  });

  await check("OpenRouter public model list: 200 for any key or none", async () => {
    for (const [path, headers] of [
      ["/api/v1/models", {}],
      ["/api/v1/models", bearer("sk-or-v1-invalid")],
      ["/openrouter/api/v1/models", bearer("sk-or-v1-quota")],
      ["/openrouter/models", bearer("sk-or-v1-slow")],
    ]) {
      const { status, body } = await get(path, headers, { signal: AbortSignal.timeout(2000) });
      assert.equal(status, 200, path);
      assert.deepEqual(ids(body.data), ["anthropic/claude-sonnet-4.5", "openai/gpt-4o"]);
    }
  });
}

async function azure() {
  await check("Azure: success with api-key and api-version, any prefix", async () => {
    for (const path of ["/openai/models" + AZURE_QUERY, "/my-resource/openai/models" + AZURE_QUERY]) {
      const { status, body } = await get(path, { "api-key": "azure-good" });
      assert.equal(status, 200, path);
      assert.equal(body.object, "list");
      assert.deepEqual(ids(body.data), ["gpt-4o", "gpt-4o-mini"]);
      assert.equal(body.data[0].status, "succeeded");
      assert.equal(typeof body.data[0].capabilities, "object");
    }
  });

  await check("Azure: no api-version -> 404 Resource not found", async () => {
    const { status, body } = await get("/openai/models", { "api-key": "azure-good" });
    assert.equal(status, 404);
    assert.deepEqual(body, { error: { code: "404", message: "Resource not found" } });
  });

  await check("Azure: invalid -> 401 with Azure's message; ratelimit 429", async () => {
    const { status, body } = await get("/openai/models" + AZURE_QUERY, { "api-key": "azure-invalid" });
    assert.equal(status, 401);
    assert.equal(body.error.code, "401");
    assert.match(body.error.message, /^Access denied due to invalid subscription key or wrong API endpoint\./);
    const limited = await get("/openai/models" + AZURE_QUERY, { "api-key": "azure-ratelimit" });
    assert.equal(limited.status, 429);
    assert.equal(limited.headers.get("retry-after"), "7");
  });

  await check("Azure precedence: Bearer on /openai/models without api-version is OpenAI style", async () => {
    const { status, body } = await get("/openai/models", bearer("sk-good"));
    assert.equal(status, 200);
    assert.equal(body.data.length, 5);
  });
}

async function bedrock() {
  await check("Bedrock: success with SigV4 and x-amz-date, any prefix", async () => {
    for (const path of ["/foundation-models", "/bedrock/foundation-models"]) {
      const { status, body } = await get(path, sigv4("AKIAGOODEXAMPLE"));
      assert.equal(status, 200, path);
      assert.deepEqual(
        body.modelSummaries.map((m) => m.modelId),
        ["anthropic.claude-3-5-sonnet-20240620-v1:0", "amazon.titan-text-express-v1"],
      );
      assert.equal(body.modelSummaries[0].modelName, "Claude 3.5 Sonnet");
      assert.equal(body.modelSummaries[0].providerName, "Anthropic");
    }
  });

  await check("Bedrock: unsigned, Bearer or no x-amz-date -> 403 Missing Authentication Token", async () => {
    const { authorization } = sigv4("AKIAGOODEXAMPLE");
    for (const headers of [{}, bearer("AKIAGOODEXAMPLE"), { authorization }]) {
      const { status, body } = await get("/foundation-models", headers);
      assert.equal(status, 403);
      assert.deepEqual(body, { message: "Missing Authentication Token" });
    }
  });

  await check("Bedrock: AKID with INVALID -> 403 UnrecognizedClientException", async () => {
    const { status, body, headers } = await get("/foundation-models", sigv4("AKIAINVALIDEXAMPLE"));
    assert.equal(status, 403);
    assert.deepEqual(body, { message: "The security token included in the request is invalid." });
    assert.equal(headers.get("x-amzn-errortype").split(":")[0], "UnrecognizedClientException");
  });

  await check("Bedrock: RESTRICTED -> 403 AccessDeniedException; BADSIGNATURE -> 403 InvalidSignatureException", async () => {
    const denied = await get("/foundation-models", sigv4("AKIARESTRICTEDEXAMPLE"));
    assert.equal(denied.status, 403);
    assert.equal(denied.headers.get("x-amzn-errortype").split(":")[0], "AccessDeniedException");
    assert.match(denied.body.Message, /not authorized to perform: bedrock:ListFoundationModels/);
    const wrong = await get("/foundation-models", sigv4("AKIABADSIGNATUREEXAMPLE"));
    assert.equal(wrong.headers.get("x-amzn-errortype").split(":")[0], "InvalidSignatureException");
  });

  await check("Bedrock: QUOTA and RATELIMIT -> 429 ThrottlingException; others by family", async () => {
    const quota = await get("/foundation-models", sigv4("AKIAQUOTAEXAMPLE"));
    assert.equal(quota.status, 429);
    assert.equal(quota.headers.get("x-amzn-errortype").split(":")[0], "ThrottlingException");
    const limited = await get("/foundation-models", sigv4("AKIARATELIMIT"));
    assert.equal(limited.status, 429);
    assert.equal(limited.headers.get("retry-after"), "7");
    assert.equal((await get("/foundation-models", sigv4("AKIAOVERLOADED"))).status, 503);
    assert.equal((await get("/foundation-models", sigv4("AKIASERVERERROR"))).status, 500);
  });
}

async function longLists() {
  await check("listbytes-N: exactly N bytes, fillers first, the provider's own models last, with Content-Length", async () => {
    const { status, headers, text, body } = await get("/openai/v1/models", bearer("sk-listbytes-300000"));
    assert.equal(status, 200);
    assert.equal(Buffer.byteLength(text), 300_000);
    assert.equal(headers.get("content-length"), "300000");
    const listed = ids(body.data);
    assert.ok(listed.length > 2000, `${listed.length} models`);
    assert.ok(listed[0].startsWith("filler-model-"));
    assert.deepEqual(listed.slice(-5), ["gpt-4o", "gpt-4o-mini", "gpt-4o-2024-08-06", "o3-mini", "deepseek-chat"]);
  });

  await check("listbytes-N with chunked: the same length sent without Content-Length", async () => {
    const { status, headers, text } = await get("/openai/v1/models", bearer("sk-listbytes-200000-chunked"));
    assert.equal(status, 200);
    assert.equal(Buffer.byteLength(text), 200_000);
    assert.equal(headers.get("content-length"), null);
    assert.equal(headers.get("transfer-encoding"), "chunked");
  });

  await check("listbytes-N: Anthropic pads its own list; Bedrock, without a data list, answers as usual", async () => {
    const claude = await get("/anthropic/v1/models", anthropic("sk-ant-listbytes-50000"));
    assert.equal(Buffer.byteLength(claude.text), 50_000);
    assert.equal(ids(claude.body.data).at(-1), "claude-3-5-haiku-20241022");
    const aws = await get("/foundation-models", sigv4("AKIDLISTBYTES-50000"));
    assert.equal(aws.status, 200);
    assert.ok(Buffer.byteLength(aws.text) < 50_000);
  });

  await check("PUT /__keys/<key> {list_bytes}: the key's list grows from then on; DELETE restores it", async () => {
    const key = "sk-grows-later";
    assert.equal((await get("/models", bearer(key))).body.data.length, 5);
    const put = await fetch(`${server.url}/__keys/${key}`, { method: "PUT", body: JSON.stringify({ list_bytes: 100_000 }) });
    assert.equal(put.status, 204);
    assert.equal(Buffer.byteLength((await get("/models", bearer(key))).text), 100_000);
    await fetch(`${server.url}/__keys/${key}`, { method: "DELETE" });
    assert.equal((await get("/models", bearer(key))).body.data.length, 5);
  });
}

async function notFound() {
  await check("other paths and methods -> 404 not found (and recorded)", async () => {
    await fetch(server.url + "/__requests", { method: "DELETE" });
    for (const [method, path] of [
      ["GET", "/"],
      ["GET", "/v1/chat/completions"],
      ["POST", "/v1/models"],
    ]) {
      const response = await fetch(server.url + path, { method });
      assert.equal(response.status, 404, `${method} ${path}`);
      assert.deepEqual(await response.json(), { error: { message: "not found" } });
    }
    assert.equal((await get("/__requests")).body.length, 3);
  });
}

async function slow() {
  await check("slow: no answer within the Worker's timeout, but recorded at once", async () => {
    await fetch(server.url + "/__requests", { method: "DELETE" });
    await assert.rejects(
      fetch(server.url + "/v1/models", { headers: bearer("sk-slow"), signal: AbortSignal.timeout(300) }),
      { name: "TimeoutError" },
    );
    const recorded = (await get("/__requests")).body;
    assert.equal(recorded.length, 1);
    assert.equal(recorded[0].headers.authorization, "Bearer sk-slow");
  });

  await check("slow: answers 200 success after the delay (shortened here)", async () => {
    const quick = await startMockProvider({ slowMs: 200 });
    try {
      const started = Date.now();
      const response = await fetch(quick.url + "/v1/models", { headers: anthropic("sk-ant-slow") });
      assert.equal(response.status, 200);
      assert.ok(Date.now() - started >= 180, "answered too early");
      assert.equal((await response.json()).first_id, "claude-sonnet-4-5-20250929");
    } finally {
      await quick.close();
    }
  });

  await check("close() with a slow request pending resolves at once and ends it", async () => {
    const other = await startMockProvider();
    const pending = fetch(other.url + "/foundation-models", { headers: sigv4("AKIASLOWEXAMPLE") });
    pending.catch(() => {});
    await waitForRecorded(other, 1);
    const started = Date.now();
    await other.close();
    assert.ok(Date.now() - started < 1000, "close waited for the slow request");
    await assert.rejects(pending);
  });

  await check("close() with a slow request pending lets the process exit", async () => {
    const moduleUrl = new URL("./mock-provider.mjs", import.meta.url).href;
    const script = `
      import { startMockProvider } from ${JSON.stringify(moduleUrl)};
      const server = await startMockProvider();
      fetch(server.url + "/v1/models", { headers: { authorization: "Bearer sk-slow" } }).catch(() => {});
      while ((await (await fetch(server.url + "/__requests")).json()).length === 0) await new Promise((r) => setTimeout(r, 10));
      await server.close();
    `;
    const started = Date.now();
    const code = await runNode(script, 5000);
    assert.equal(code, 0);
    assert.ok(Date.now() - started < 5000);
  });
}

async function loopbackOnly() {
  await check("listens on 127.0.0.1 only", async () => {
    assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(server.url, `http://127.0.0.1:${server.port}`);
    await assert.rejects(startMockProvider({ host: "0.0.0.0" }));
  });
}

// ---------------------------------------------------------------------------------------------

async function waitForRecorded(target, count) {
  for (let i = 0; i < 100; i++) {
    const recorded = await (await fetch(target.url + "/__requests")).json();
    if (recorded.length >= count) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error("request never recorded");
}

/** Runs an ES module script in a fresh Node; resolves its exit code, or rejects if it hangs. */
function runNode(source, timeoutMs) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--input-type=module", "-e", source], { stdio: ["ignore", "inherit", "inherit"] });
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`child still running after ${timeoutMs} ms: something kept it alive`));
    }, timeoutMs);
    child.on("exit", (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
}

async function main() {
  server = await startMockProvider();
  try {
    for (const group of [controlRoutes, openAiStyle, gemini, anthropicRoutes, openRouter, azure, bedrock, longLists, notFound, slow, loopbackOnly]) {
      await group();
    }
  } finally {
    await server.close();
  }

  const failures = results.filter(([, error]) => error);
  for (const [name, error] of results) {
    console.log(`${error ? "FAIL" : "ok  "} ${name}`);
    if (error) console.log(`     ${String(error.stack ?? error).split("\n").join("\n     ")}`);
  }
  console.log(`\n${results.length - failures.length}/${results.length} passed (${fileURLToPath(import.meta.url)})`);
  process.exit(failures.length ? 1 : 0);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
