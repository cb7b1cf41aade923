// A stand-in for the AI providers keywarden validates keys against, for the end-to-end tests.
//
// The Worker is configured with an api_host pointing here (e.g. http://127.0.0.1:PORT/openai/v1)
// and makes the same request it would make to the real provider. The answer is chosen by the API
// key the request carries, so a test picks an outcome by picking a key and needs no setup call.
//
// Only node:http: the tests must not depend on anything that could fetch a real provider.
//
// Control routes (never recorded):
//   GET    /__requests   200, every recorded request, oldest first
//   DELETE /__requests   204, forgets them
//   PUT    /__keys/<key> {status, body}   from now on, answer every request carrying exactly
//                        this key with that status and JSON body (a key that goes bad later)
//   PUT    /__keys/<key> {list_bytes}     from now on, answer it with the provider's success
//                        list padded to exactly list_bytes bytes (a list that grows later)
//   DELETE /__keys/<key> 204, back to the answer its family gives
//
// GitHub's secret scanning keys (two P-256 keys made at start; recorded like provider calls):
//   GET  /github/keys            {"public_keys": [...]}: gh-key-1, and gh-key-2 once rotated
//   POST /github/__sign?key=ID   (control) the base64 DER signature of the body under key ID
//   POST /github/__rotate        (control) publishes gh-key-2 too, from now on
//
// Notification receiver (recorded like provider calls):
//   POST /receiver/ok/<name>      204
//   POST /receiver/flaky/<name>   503 the first time for each <name>, 204 after
//
// Provider routes (GET only; any path prefix, so a test can point several providers here at
// once). The first match wins, in this order, because the later rules are looser:
//   1. .../api/v1/models, or .../models under an `openrouter` path segment
//        OpenRouter's public model list: 200 for any key or none. It is here to show why a
//        validator must not trust /models on OpenRouter.
//   2. .../key                         OpenRouter key info (the real validation call)
//   3. .../foundation-models           AWS Bedrock ListFoundationModels (SigV4)
//   4. .../openai/models with an `api-version` query or an `api-key` header
//        Azure OpenAI. Without either it is not Azure's request, so an OpenAI-compatible host
//        that happens to end in /openai falls through to rule 6.
//   5. .../v1/models with an `x-api-key` header           Anthropic
//   6. .../models                       OpenAI style (OpenAI, DeepSeek, Qwen, Minimax, Z.ai,
//        OrcaRouter, openai_compatible); under /v1beta/openai/ it is Gemini's OpenAI-compatible
//        endpoint, which takes OpenAI's request but answers errors in Google's shape.
//   anything else: 404 {"error":{"message":"not found"}}
//
// Before the key is looked at, each provider refuses a malformed request the way the real one
// does: Anthropic without a valid anthropic-version (400), Azure without api-version (404),
// Bedrock without a SigV4 authorization header and x-amz-date (403).
//
// The key is read from `authorization: Bearer <k>`, else `x-api-key`, else `api-key`, else the
// access key id of a SigV4 `authorization: AWS4-HMAC-SHA256 Credential=<AKID>/...`. Its family
// is the first of these substrings it contains (case-sensitive, except Bedrock's access key ids,
// which AWS writes in capitals, so they are matched case-insensitively):
//   slow         the success answer, 15 s late (the Worker's timeout test)
//   laggy        the success answer, 400 ms late (to hold a configure open while others read)
//   restricted   the provider's answer for a key that authenticated but lacks a permission:
//                OpenAI 401 "Missing scopes", Gemini 403 SERVICE_DISABLED, Anthropic 403
//                permission_error, Azure 401 PermissionDenied, Bedrock 403 AccessDeniedException
//   region       a refusal by region: OpenAI 403 unsupported_country_region_territory, Gemini
//                400 FAILED_PRECONDITION "User location is not supported", Anthropic 403 forbidden
//   badsignature Bedrock 403 InvalidSignatureException (a wrong secret access key)
//   invalid      the provider's bad-key answer (also given when no key is sent)
//   quota        the provider's quota / billing answer
//   ratelimit    429 in the provider's shape, with retry-after: 7
//   overloaded   Anthropic 529 overloaded_error; 503 for the others
//   servererror  500 with a JSON error in the provider's shape
//   (other)      success; on OpenRouter's /key a key containing `exhausted` succeeds with a
//                spent credit limit (limit_remaining 0), one containing `limited` with 7.5 of
//                a limit of 10 left
// A family a provider has no answer for (Azure's `region`, say) is answered as success.
//
// Two more routes, for the checks after the key:
//   GET  .../user/balance                DeepSeek's balance: a key containing `broke` has
//        is_available false and 0.00 USD; `invalid` 401; any other 110.00 CNY
//   POST .../openai/deployments/<name>/chat/completions?api-version=   Azure's deployment
//        probe: without api-version 404; an `invalid` key 401; a <name> containing `missing`
//        404 DeploymentNotFound; else 400 "'messages' is a required property" (it exists)
//
// A key containing `listbytes-<N>` (checked before the families) gets the provider's success
// answer with its `data` list led by filler models and padded to exactly N bytes of JSON, the
// real models last: a long list whose wanted model is at the very end. It is sent with a
// Content-Length, or, when the key also contains `chunked`, in 64 KiB chunks without one. Only
// providers whose success answer has a `data` list (OpenAI style, Gemini, Anthropic, Azure,
// OpenRouter's public list) do this; the others answer as usual.

import http from "node:http";
import { generateKeyPairSync, sign } from "node:crypto";

const SLOW_MS = 15_000;
const RETRY_AFTER_SECONDS = "7";
const FAMILIES = ["slow", "laggy", "restricted", "region", "badsignature", "invalid", "quota", "ratelimit", "overloaded", "servererror"];
const ANTHROPIC_VERSIONS = ["2023-06-01", "2023-01-01"];
// The mock says yes to made-up keys: it must never be reachable from another machine.
const LOOPBACK_HOSTS = ["127.0.0.1", "localhost", "::1"];

// ---------------------------------------------------------------------------------------------
// Answers. Each is { status, body, headers? }; bodies are the providers' documented shapes.

const json = (status, body, headers = {}) => ({ status, body, headers });
const LAG_MS = 400;

function openAiModel(id) {
  return { id, object: "model", created: 1715367049, owned_by: "system" };
}

function openAiError(message, type, code) {
  return { error: { message, type, param: null, code } };
}

// Google APIs answer errors as google.rpc.Status; the OpenAI-compatible endpoint wraps it in an
// array.
function googleError(code, status, message, details = []) {
  return [{ error: { code, message, status, details } }];
}

function anthropicError(type, message) {
  return { type: "error", error: { type, message } };
}

function openRouterError(code, message) {
  return { error: { message, code } };
}

function azureError(code, message) {
  return { error: { code, message } };
}

// AWS REST-JSON errors name the exception in a header, not in the body; the header names the
// service's namespace after the exception.
function awsError(status, errorType, message, messageField = "message") {
  return json(status, { [messageField]: message }, { "x-amzn-errortype": `${errorType}:http://internal.amazon.com/coral/com.amazon.coral.service/` });
}

const OPENAI = {
  name: "openai",
  success: () =>
    json(200, {
      object: "list",
      data: ["gpt-4o", "gpt-4o-mini", "gpt-4o-2024-08-06", "o3-mini", "deepseek-chat"].map(openAiModel),
    }),
  invalid: () =>
    json(
      401,
      openAiError(
        "Incorrect API key provided: sk-****. You can find your API key at https://platform.openai.com/account/api-keys.",
        "invalid_request_error",
        "invalid_api_key",
      ),
    ),
  quota: () =>
    json(
      429,
      openAiError(
        "You exceeded your current quota, please check your plan and billing details.",
        "insufficient_quota",
        "insufficient_quota",
      ),
    ),
  restricted: () =>
    json(
      401,
      openAiError(
        "You have insufficient permissions for this operation. Missing scopes: api.model.read. Check that you have the correct role in your organization (Reader, Writer, Owner) and project (Member, Owner), and if you're using a restricted API key, that it has the necessary scopes.",
        "invalid_request_error",
        null,
      ),
    ),
  region: () =>
    json(403, { error: { code: "unsupported_country_region_territory", message: "Country, region, or territory not supported", param: null, type: "request_forbidden" } }),
  ratelimit: () => json(429, openAiError("Rate limit reached for requests", "requests", "rate_limit_exceeded")),
  overloaded: () =>
    json(503, openAiError("The engine is currently overloaded, please try again later.", "server_error", null)),
  servererror: () =>
    json(500, openAiError("The server had an error while processing your request. Sorry about that!", "server_error", null)),
};

const GEMINI = {
  name: "gemini",
  success: () =>
    json(200, {
      object: "list",
      data: ["models/gemini-2.5-flash", "models/gemini-2.5-pro", "models/gemini-2.0-flash"].map((id) => ({
        ...openAiModel(id),
        owned_by: "google",
      })),
    }),
  invalid: () =>
    json(
      400,
      googleError(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.", [
        {
          "@type": "type.googleapis.com/google.rpc.ErrorInfo",
          reason: "API_KEY_INVALID",
          domain: "googleapis.com",
          metadata: { service: "generativelanguage.googleapis.com" },
        },
      ]),
    ),
  quota: () =>
    json(
      429,
      googleError(
        429,
        "RESOURCE_EXHAUSTED",
        "You exceeded your current quota, please check your plan and billing details. For more information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.",
        [
          {
            "@type": "type.googleapis.com/google.rpc.QuotaFailure",
            violations: [
              {
                quotaMetric: "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                quotaId: "GenerateRequestsPerDayPerProjectPerModel-FreeTier",
              },
            ],
          },
          {
            "@type": "type.googleapis.com/google.rpc.Help",
            links: [{ description: "Learn more about Gemini API quotas", url: "https://ai.google.dev/gemini-api/docs/rate-limits" }],
          },
        ],
      ),
    ),
  restricted: () =>
    json(
      403,
      googleError(
        403,
        "PERMISSION_DENIED",
        "Generative Language API has not been used in project 445009168042 before or it is disabled. Enable it by visiting https://console.developers.google.com/apis/api/generativelanguage.googleapis.com/overview?project=445009168042 then retry.",
        [
          {
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            reason: "SERVICE_DISABLED",
            domain: "googleapis.com",
            metadata: { service: "generativelanguage.googleapis.com", consumer: "projects/445009168042" },
          },
        ],
      ),
    ),
  region: () => json(400, googleError(400, "FAILED_PRECONDITION", "User location is not supported for the API use.")),
  ratelimit: () =>
    json(429, googleError(429, "RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota).")),
  overloaded: () => json(503, googleError(503, "UNAVAILABLE", "The model is overloaded. Please try again later.")),
  servererror: () => json(500, googleError(500, "INTERNAL", "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting")),
};

const ANTHROPIC_MODELS = [
  ["claude-sonnet-4-5-20250929", "Claude Sonnet 4.5", "2025-09-29T00:00:00Z"],
  ["claude-opus-4-1-20250805", "Claude Opus 4.1", "2025-08-05T00:00:00Z"],
  ["claude-3-5-haiku-20241022", "Claude Haiku 3.5", "2024-10-22T00:00:00Z"],
];

const ANTHROPIC = {
  name: "anthropic",
  // Anthropic refuses a request without a version it knows before it looks at the key.
  checkRequest(request) {
    const version = request.headers["anthropic-version"];
    if (version === undefined) {
      return json(400, anthropicError("invalid_request_error", "anthropic-version: header is required"));
    }
    if (!ANTHROPIC_VERSIONS.includes(version)) {
      return json(400, anthropicError("invalid_request_error", `anthropic-version: "${version}" is not a valid version`));
    }
    return null;
  },
  success: () =>
    json(200, {
      data: ANTHROPIC_MODELS.map(([id, display_name, created_at]) => ({ type: "model", id, display_name, created_at })),
      has_more: false,
      first_id: ANTHROPIC_MODELS[0][0],
      last_id: ANTHROPIC_MODELS.at(-1)[0],
    }),
  invalid: () => json(401, anthropicError("authentication_error", "invalid x-api-key")),
  restricted: () => json(403, { ...anthropicError("permission_error", "Permission denied"), request_id: "req_011CaH53rCYtDAVnwhLQvkuc" }),
  // Served by Cloudflare in front of the API: no top-level "type".
  region: () => json(403, { error: { type: "forbidden", message: "Request not allowed" } }),
  quota: () =>
    json(
      400,
      anthropicError(
        "invalid_request_error",
        "Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade or purchase credits.",
      ),
    ),
  ratelimit: () =>
    json(
      429,
      anthropicError(
        "rate_limit_error",
        "This request would exceed the rate limit for your organization of 50 requests per minute. For details, refer to: https://docs.claude.com/en/api/rate-limits.",
      ),
    ),
  overloaded: () => json(529, anthropicError("overloaded_error", "Overloaded")),
  servererror: () => json(500, anthropicError("api_error", "Internal server error")),
};

const OPENROUTER_KEY = {
  name: "openrouter",
  success: (key) => {
    // A key whose credit limit is spent still answers 200: the validator has to read the body.
    const exhausted = key.includes("exhausted");
    const limited = key.includes("limited");
    return json(200, {
      data: {
        label: "sk-or-v1-abc...xyz",
        limit: exhausted || limited ? 10 : null,
        usage: exhausted ? 10 : limited ? 2.5 : 0.42,
        is_free_tier: false,
        limit_remaining: exhausted ? 0 : limited ? 7.5 : null,
        rate_limit: { requests: -1, interval: "10s" },
      },
    });
  },
  invalid: () => json(401, openRouterError(401, "No auth credentials found")),
  quota: () => json(402, openRouterError(402, "Insufficient credits")),
  ratelimit: () => json(429, openRouterError(429, "Rate limit exceeded")),
  overloaded: () => json(503, openRouterError(503, "Service temporarily unavailable")),
  servererror: () => json(500, openRouterError(500, "Internal Server Error")),
};

// OpenRouter lists its models to anyone, so it never looks at the key.
const OPENROUTER_PUBLIC_MODELS = {
  name: "openrouter-models",
  public: true,
  success: () =>
    json(200, {
      data: [
        {
          id: "anthropic/claude-sonnet-4.5",
          canonical_slug: "anthropic/claude-4.5-sonnet-20250929",
          name: "Anthropic: Claude Sonnet 4.5",
          created: 1759161676,
          context_length: 1000000,
          pricing: { prompt: "0.000003", completion: "0.000015" },
        },
        {
          id: "openai/gpt-4o",
          canonical_slug: "openai/gpt-4o",
          name: "OpenAI: GPT-4o",
          created: 1715367049,
          context_length: 128000,
          pricing: { prompt: "0.0000025", completion: "0.00001" },
        },
      ],
    }),
};

const AZURE_CAPABILITIES = {
  fine_tune: false,
  inference: true,
  completion: false,
  chat_completion: true,
  embeddings: false,
};

const AZURE = {
  name: "azure",
  // Azure routes on api-version: without it the request matches no operation at all.
  checkRequest(request) {
    if (!request.query["api-version"]) return json(404, azureError("404", "Resource not found"));
    return null;
  },
  success: () =>
    json(200, {
      data: ["gpt-4o", "gpt-4o-mini"].map((id) => ({
        id,
        status: "succeeded",
        capabilities: AZURE_CAPABILITIES,
        lifecycle_status: "generally-available",
        created_at: 1715558400,
        object: "model",
      })),
      object: "list",
    }),
  invalid: () =>
    json(
      401,
      azureError(
        "401",
        "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource.",
      ),
    ),
  restricted: () => json(401, azureError("PermissionDenied", "Principal does not have access to API/Operation.")),
  quota: () =>
    json(403, azureError("403", "Out of call volume quota for OpenAI API. Quota will be replenished in 2.12:16:11.")),
  ratelimit: () =>
    json(
      429,
      azureError(
        "429",
        "Requests to the Models_List Operation under Azure OpenAI API version 2024-10-21 have exceeded call rate limit of your current OpenAI S0 pricing tier. Please retry after 7 seconds.",
      ),
    ),
  overloaded: () =>
    json(503, azureError("ServiceUnavailable", "The service is temporarily unable to process your request. Please try again later.")),
  servererror: () =>
    json(500, azureError("InternalServerError", "The server had an error while processing your request. Sorry about that!")),
};

const BEDROCK_MODELS = [
  ["anthropic.claude-3-5-sonnet-20240620-v1:0", "Claude 3.5 Sonnet", "Anthropic", ["TEXT", "IMAGE"]],
  ["amazon.titan-text-express-v1", "Titan Text G1 - Express", "Amazon", ["TEXT"]],
];

const BEDROCK = {
  name: "bedrock",
  // Access key ids are upper case, so a test's "INVALID" in one must still select a family.
  caseInsensitiveKey: true,
  // API Gateway-fronted AWS services answer an unsigned request before any key lookup.
  checkRequest(request) {
    const signed = (request.headers.authorization ?? "").startsWith("AWS4-HMAC-SHA256 Credential=");
    if (!signed || !request.headers["x-amz-date"]) {
      return awsError(403, "MissingAuthenticationTokenException", "Missing Authentication Token");
    }
    return null;
  },
  success: () =>
    json(200, {
      modelSummaries: BEDROCK_MODELS.map(([modelId, modelName, providerName, inputModalities]) => ({
        modelArn: `arn:aws:bedrock:us-east-1::foundation-model/${modelId}`,
        modelId,
        modelName,
        providerName,
        inputModalities,
        outputModalities: ["TEXT"],
        responseStreamingSupported: true,
        customizationsSupported: [],
        inferenceTypesSupported: ["ON_DEMAND"],
        modelLifecycle: { status: "ACTIVE" },
      })),
    }),
  invalid: () => awsError(403, "UnrecognizedClientException", "The security token included in the request is invalid."),
  badsignature: () =>
    awsError(
      403,
      "InvalidSignatureException",
      "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.",
    ),
  restricted: () =>
    awsError(
      403,
      "AccessDeniedException",
      "User: arn:aws:iam::123456789012:user/keywarden-test is not authorized to perform: bedrock:ListFoundationModels because no identity-based policy allows the bedrock:ListFoundationModels action",
      "Message",
    ),
  quota: () => awsError(429, "ThrottlingException", "Too many tokens per day, please wait before trying again."),
  ratelimit: () => awsError(429, "ThrottlingException", "Too many requests, please wait before trying again."),
  overloaded: () => awsError(503, "ServiceUnavailableException", "Service is temporarily unavailable. Please try again later."),
  servererror: () => awsError(500, "InternalServerException", "The server encountered an internal error. Please retry your request."),
};

// ---------------------------------------------------------------------------------------------
// Routing: the first row whose test passes answers. See the precedence in the header comment.

// DeepSeek's account balance, asked after its /models proved the key.
const DEEPSEEK_BALANCE = {
  name: "deepseek-balance",
  success: (key) =>
    json(200, key.includes("broke")
      ? { is_available: false, balance_infos: [{ currency: "USD", total_balance: "0.00", granted_balance: "0.00", topped_up_balance: "0.00" }] }
      : { is_available: true, balance_infos: [{ currency: "CNY", total_balance: "110.00", granted_balance: "10.00", topped_up_balance: "100.00" }] }),
  invalid: () => json(401, openAiError("Authentication Fails, Your api key: ****abcd is invalid", "authentication_error", "invalid_request_error")),
};

// Azure's chat route for one deployment, probed with a body without messages.
const AZURE_DEPLOYMENT = {
  name: "azure-deployment",
  checkRequest(request) {
    if (!request.query["api-version"]) return json(404, azureError("404", "Resource not found"));
    if (familyOf(extractKey(request.headers)) === "invalid") return AZURE.invalid();
    const deployment = request.path.split("/deployments/")[1]?.split("/")[0] ?? "";
    if (decodeURIComponent(deployment).includes("missing")) {
      return json(
        404,
        azureError(
          "DeploymentNotFound",
          "The API deployment for this resource does not exist. If you created the deployment within the last 5 minutes, please wait a moment and try again.",
        ),
      );
    }
    return json(400, { error: { message: "'messages' is a required property", type: "invalid_request_error", param: null, code: null } });
  },
  success: () => json(500, azureError("InternalServerError", "unreachable")),
};

const POST_ROUTES = [{ provider: AZURE_DEPLOYMENT, matches: (r) => /\/openai\/deployments\/[^/]+\/chat\/completions$/.test(r.path) }];

const ROUTES = [
  { provider: DEEPSEEK_BALANCE, matches: (r) => r.path.endsWith("/user/balance") },
  {
    provider: OPENROUTER_PUBLIC_MODELS,
    matches: (r) => r.path.endsWith("/api/v1/models") || (r.path.endsWith("/models") && r.path.split("/").includes("openrouter")),
  },
  { provider: OPENROUTER_KEY, matches: (r) => r.path.endsWith("/key") },
  { provider: BEDROCK, matches: (r) => r.path.endsWith("/foundation-models") },
  {
    provider: AZURE,
    matches: (r) => r.path.endsWith("/openai/models") && ("api-version" in r.query || "api-key" in r.headers),
  },
  { provider: ANTHROPIC, matches: (r) => r.path.endsWith("/v1/models") && "x-api-key" in r.headers },
  { provider: GEMINI, matches: (r) => r.path.endsWith("/models") && r.path.includes("/v1beta/openai/") },
  { provider: OPENAI, matches: (r) => r.path.endsWith("/models") },
];

const NOT_FOUND = json(404, { error: { message: "not found" } });

// ---------------------------------------------------------------------------------------------
// Long lists

const FILLER_MODEL = (i) => ({ id: `filler-model-${String(i).padStart(7, "0")}`, object: "model", created: 1715367049, owned_by: "system" });
const CHUNK_BYTES = 64 * 1024;

/**
 * The provider's success answer with filler models ahead of its own in `data`, padded with a
 * top-level `padding` string to exactly `bytes` bytes; null when its answer has no `data` list.
 */
export function paddedList(success, bytes) {
  if (!Array.isArray(success?.data)) return null;
  const shell = JSON.stringify({ ...success, padding: "" });
  const fillerBytes = JSON.stringify(FILLER_MODEL(0)).length + 1;
  const count = Math.max(0, Math.floor((bytes - shell.length) / fillerBytes) - 1);
  const data = [...Array.from({ length: count }, (_, i) => FILLER_MODEL(i)), ...success.data];
  const unpadded = JSON.stringify({ ...success, data, padding: "" });
  if (unpadded.length > bytes) throw new Error(`a list of ${bytes} bytes cannot hold the provider's own models`);
  const text = JSON.stringify({ ...success, data, padding: "x".repeat(bytes - unpadded.length) });
  return text;
}

function longList(provider, key, bytes, chunked) {
  const success = provider.success(key);
  const text = success.status === 200 ? paddedList(success.body, bytes) : null;
  return text === null ? success : { status: 200, text, chunked, headers: success.headers };
}

function route(request) {
  const table = request.method === "GET" ? ROUTES : request.method === "POST" ? POST_ROUTES : [];
  return table.find((row) => row.matches(request))?.provider ?? null;
}

// ---------------------------------------------------------------------------------------------
// Keys

function extractKey(headers) {
  const authorization = headers.authorization ?? "";
  const bearer = /^Bearer\s+(.+)$/i.exec(authorization);
  if (bearer) return bearer[1].trim();
  if (headers["x-api-key"]) return headers["x-api-key"];
  if (headers["api-key"]) return headers["api-key"];
  const sigv4 = /^AWS4-HMAC-SHA256\s+Credential=([^/,\s]+)\//.exec(authorization);
  if (sigv4) return sigv4[1];
  return null;
}

/** The family a key selects: one of FAMILIES, or "success". A missing key is a bad key. */
function familyOf(key, { caseInsensitive = false } = {}) {
  if (!key) return "invalid";
  const text = caseInsensitive ? key.toLowerCase() : key;
  return FAMILIES.find((family) => text.includes(family)) ?? "success";
}

// ---------------------------------------------------------------------------------------------
// Server

function parseQuery(searchParams) {
  const query = {};
  for (const [name, value] of searchParams) {
    if (!(name in query)) query[name] = value;
    else query[name] = [].concat(query[name], value);
  }
  return query;
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on("data", (chunk) => chunks.push(chunk));
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

function send(res, { status, body, text: raw, chunked = false, headers = {} }) {
  if (res.destroyed || res.headersSent) return;
  if (raw !== undefined) {
    if (!chunked) {
      res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(raw), ...headers }).end(raw);
      return;
    }
    // No Content-Length: Node sends it with Transfer-Encoding: chunked.
    res.writeHead(status, { "content-type": "application/json", ...headers });
    for (let at = 0; at < raw.length && !res.destroyed; at += CHUNK_BYTES) res.write(raw.slice(at, at + CHUNK_BYTES));
    res.end();
    return;
  }
  if (body === undefined) {
    res.writeHead(status, headers).end();
    return;
  }
  const text = JSON.stringify(body);
  res
    .writeHead(status, {
      "content-type": "application/json",
      "content-length": Buffer.byteLength(text),
      ...headers,
    })
    .end(text);
}

/** The answer a provider gives this request; `slow: true` means send it after the delay. */
function answerFor(provider, request, overrides) {
  if (provider.public) return provider.success();
  const override = overrides.get(extractKey(request.headers));
  if (override?.listBytes !== undefined) return longList(provider, extractKey(request.headers), override.listBytes, false);
  if (override) return json(override.status, override.body);
  const rejected = provider.checkRequest?.(request);
  if (rejected) return rejected;
  const key = extractKey(request.headers);
  const listBytes = /listbytes-(\d+)/.exec(key ?? "");
  if (listBytes) return longList(provider, key, Number(listBytes[1]), key.includes("chunked"));
  const family = familyOf(key, { caseInsensitive: provider.caseInsensitiveKey });
  // "slow" is answered like success, later: the Worker must give up before it arrives.
  if (family === "slow") return { ...provider.success(key), slow: true };
  if (family === "laggy") return { ...provider.success(key), lagMs: LAG_MS };
  if (family === "success") return provider.success(key);
  if (!provider[family]) return provider.success(key);
  const answer = provider[family]();
  if (family === "ratelimit") answer.headers = { ...answer.headers, "retry-after": RETRY_AFTER_SECONDS };
  return answer;
}

export async function startMockProvider({ port = 0, host = "127.0.0.1", slowMs = SLOW_MS } = {}) {
  if (!LOOPBACK_HOSTS.includes(host)) throw new Error(`mock provider listens on loopback only, not ${host}`);

  const requests = [];
  const overrides = new Map();
  const flakyFailed = new Set();
  const sockets = new Set();
  const timers = new Set();

  function handleControl(req, res) {
    if (req.method === "GET") return send(res, json(200, requests));
    if (req.method === "DELETE") {
      requests.length = 0;
      return send(res, { status: 204 });
    }
    return send(res, json(405, { error: { message: "method not allowed" } }, { allow: "GET, DELETE" }));
  }

  // Answers after `ms`, unless the client hangs up or the server closes first.
  function sendLater(res, answer, ms) {
    const timer = setTimeout(() => {
      timers.delete(timer);
      send(res, answer);
    }, ms);
    timers.add(timer);
    res.on("close", () => {
      clearTimeout(timer);
      timers.delete(timer);
    });
  }

  async function handleOverride(req, res, key) {
    if (req.method === "PUT") {
      const { status, body, list_bytes: listBytes } = JSON.parse((await readBody(req)) || "{}");
      overrides.set(key, listBytes !== undefined ? { listBytes } : { status: status ?? 401, body: body ?? {} });
      return send(res, { status: 204 });
    }
    if (req.method === "DELETE") {
      overrides.delete(key);
      return send(res, { status: 204 });
    }
    return send(res, json(405, { error: { message: "method not allowed" } }, { allow: "PUT, DELETE" }));
  }

  const githubKeys = new Map(["gh-key-1", "gh-key-2"].map((id) => [id, generateKeyPairSync("ec", { namedCurve: "P-256" })]));
  let githubRotated = false;

  function githubKeyList() {
    const published = githubRotated ? ["gh-key-1", "gh-key-2"] : ["gh-key-1"];
    const public_keys = published.map((id, index) => ({
      key_identifier: id,
      key: githubKeys.get(id).publicKey.export({ type: "spki", format: "pem" }),
      is_current: index === published.length - 1,
    }));
    return json(200, { public_keys });
  }

  async function handleGithubControl(req, res, url) {
    if (url.pathname === "/github/__rotate") {
      githubRotated = true;
      return send(res, { status: 204 });
    }
    const pair = githubKeys.get(url.searchParams.get("key"));
    if (!pair) return send(res, json(404, { error: { message: "no such key" } }));
    const body = Buffer.from((await readBody(req)) ?? "", "utf8");
    return send(res, { status: 200, headers: { "content-type": "text/plain" }, text: sign("sha256", body, pair.privateKey).toString("base64") });
  }

  async function handle(req, res) {
    const url = new URL(req.url, "http://mock.invalid");
    if (url.pathname === "/__requests") return handleControl(req, res);
    if (req.method === "POST" && url.pathname.startsWith("/github/__")) return handleGithubControl(req, res, url);
    if (url.pathname.startsWith("/__keys/")) return handleOverride(req, res, decodeURIComponent(url.pathname.slice("/__keys/".length)));

    const request = {
      method: req.method,
      path: url.pathname,
      query: parseQuery(url.searchParams),
      headers: { ...req.headers },
      body: await readBody(req),
      at: new Date().toISOString(),
    };
    requests.push(request);

    if (req.method === "GET" && url.pathname === "/github/keys") return send(res, githubKeyList());

    if (req.method === "POST" && url.pathname.startsWith("/receiver/")) {
      const flaky = url.pathname.startsWith("/receiver/flaky/");
      if (flaky && !flakyFailed.has(url.pathname)) {
        flakyFailed.add(url.pathname);
        return send(res, json(503, { error: { message: "receiver down, try again" } }));
      }
      return send(res, { status: 204 });
    }

    const provider = route(request);
    if (!provider) return send(res, NOT_FOUND);
    const answer = answerFor(provider, request, overrides);
    if (answer.slow) return sendLater(res, answer, slowMs);
    if (answer.lagMs) return sendLater(res, answer, answer.lagMs);
    return send(res, answer);
  }

  const server = http.createServer((req, res) => {
    handle(req, res).catch((error) => send(res, json(500, { error: { message: `mock provider: ${error.message}` } })));
  });
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });

  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });

  const actualPort = server.address().port;
  const urlHost = host.includes(":") ? `[${host}]` : host;
  return {
    port: actualPort,
    url: `http://${urlHost}:${actualPort}`,
    // A slow request holds its socket open for 15 s; destroy it so closing never waits on it
    // and nothing keeps the test process alive.
    close() {
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      const closed = new Promise((resolve) => server.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      return closed;
    },
  };
}
