// Helpers that read like the API: one call per request, JSON in and out.
import { SELF, env } from "cloudflare:test";
import { contractProblems, loadContract } from "./contract.js";

export const ADMIN_TOKEN = "kwadmin_test_0123456789abcdefghijklmnopqrstuvwxyz";
export const KEY_PATTERN = /^kw_live_[0-9A-Za-z]{32}[0-9A-Za-z]{6}$/;
export const TIMESTAMP_PATTERN = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/;

/**
 * Sends a request to the Worker. `body` objects are sent as JSON; strings are sent as they are.
 * Returns { status, headers, body } where body is the parsed JSON (or the text if not JSON).
 */
export async function call(method, path, { body, token, apiKey, headers = {}, ip } = {}) {
  const init = { method, headers: { ...headers } };
  if (token) init.headers.authorization = `Bearer ${token}`;
  if (apiKey) init.headers["x-api-key"] = apiKey;
  // Each call comes from its own address unless the test names one, so failed attempts in one
  // test never block another.
  init.headers["cf-connecting-ip"] = ip ?? randomIp();
  if (body !== undefined) {
    init.body = typeof body === "string" ? body : JSON.stringify(body);
    if (typeof body !== "string" && !Object.keys(init.headers).some((h) => h.toLowerCase() === "content-type")) {
      init.headers["content-type"] = "application/json";
    }
  }
  const response = await SELF.fetch(`http://keywarden.test${path}`, init);
  const text = await response.text();
  let parsed = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON: the test asserts on the text
  }
  const contract = await loadContract(async () => (await SELF.fetch("http://keywarden.test/openapi.json")).json());
  const problems = contractProblems(contract, method, path, response.status, parsed, text);
  if (problems.length > 0) throw new Error(`the response breaks the served OpenAPI document: ${problems.join("; ")}`);
  return { status: response.status, headers: response.headers, body: parsed, text };
}

export function randomIp() {
  const bytes = crypto.getRandomValues(new Uint8Array(4));
  return `10.${bytes[1]}.${bytes[2]}.${bytes[3]}`;
}

export const admin = (method, path, options = {}) => call(method, path, { token: ADMIN_TOKEN, ...options });

let counter = 0;
/** Creates a workspace through the operator API; returns { workspace, key, ownerKey }. */
export async function createWorkspace(fields = {}) {
  counter += 1;
  const response = await admin("POST", "/v1/workspaces", { body: { name: `Workspace ${counter}`, ...fields } });
  if (response.status !== 201) throw new Error(`workspace creation failed: ${response.status} ${response.text}`);
  return { workspace: response.body.workspace, ownerKey: response.body.key, key: response.body.key.key };
}

export async function sha256Hex(text) {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** CRC32 (IEEE), written out here so the test does not trust the Worker's own. */
export function crc32(text) {
  let crc = 0xffffffff;
  for (const byte of new TextEncoder().encode(text)) {
    crc ^= byte;
    for (let i = 0; i < 8; i++) crc = (crc >>> 1) ^ (0xedb88320 & -(crc & 1));
  }
  return (crc ^ 0xffffffff) >>> 0;
}

export function base62(value, width) {
  const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  let out = "";
  do {
    out = alphabet[value % 62] + out;
    value = Math.floor(value / 62);
  } while (value > 0);
  return out.padStart(width, "0");
}

export async function dbRow(sql, ...args) {
  return env.DB.prepare(sql).bind(...args).first();
}

export async function dbRows(sql, ...args) {
  const { results } = await env.DB.prepare(sql).bind(...args).all();
  return results;
}

/** Creates a key with the owner key (or `as`); returns the 201 body (key object with `key`). */
export async function createKey(ownerKey, fields = {}) {
  const response = await call("POST", "/v1/keys", { token: ownerKey, body: { name: "test key", ...fields } });
  if (response.status !== 201) throw new Error(`key creation failed: ${response.status} ${response.text}`);
  return response.body;
}

/** A well-formed key (right prefix, length and checksum) that was never issued. */
export function unknownKey() {
  const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  const random = [...bytes].map((b) => alphabet[b % 62]).join("");
  return `kw_live_${random}${base62(crc32(random), 6)}`;
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Reads until `ok` holds (what the Worker writes after its response), else fails naming `what`.
 * The 5 s default leaves room for the authority's 1 s flush on a loaded CI machine.
 */
export async function eventually(read, ok, what, { attempts = 100, pauseMs = 50 } = {}) {
  let value;
  for (let i = 0; i < attempts; i++) {
    value = await read();
    if (ok(value)) return value;
    await sleep(pauseMs);
  }
  throw new Error(`${what} did not happen: ${JSON.stringify(value)}`);
}
