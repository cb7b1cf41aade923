// The console in a real headless Chromium against the local Worker (wrangler dev, real local D1
// and KV) and the mock provider: what a person does on the page, checked against the API.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync } from "node:fs";
import { createHmac } from "node:crypto";
import puppeteer from "puppeteer-core";
import { startLocalWorker } from "../../scripts/local-worker.mjs";

const CHROMIUM = process.env.CHROMIUM_PATH || ["/usr/bin/chromium", "/usr/bin/chromium-browser"].find((p) => existsSync(p));
const SCREENSHOTS = process.env.SCREENSHOTS === "1";

let worker, browser, page, ownerKey;

before(async () => {
  assert.ok(CHROMIUM, "No Chromium: install Debian's chromium package or set CHROMIUM_PATH to a Chromium binary.");
  worker = await startLocalWorker({ port: Number(process.env.PORT), state: process.env.STATE, adminToken: process.env.ADMIN_TOKEN });
  ownerKey = await worker.createOwnerKey("Acme console");
  browser = await puppeteer.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox", "--disable-gpu"] });
  const context = browser.defaultBrowserContext();
  await context.overridePermissions(worker.base, ["clipboard-read", "clipboard-write", "clipboard-sanitized-write"]);
  page = await browser.newPage();
  await page.setViewport({ width: 1280, height: 900 });
  page.on("dialog", (dialog) => dialog.accept(dialog.type() === "prompt" ? "0" : undefined));
});

after(async () => {
  await browser?.close();
  worker?.stop();
});

async function api(path, key, init = {}) {
  return fetch(`${worker.base}${path}`, { ...init, headers: { authorization: `Bearer ${key}`, ...(init.headers || {}) } });
}

async function textOf(selector) {
  return page.$eval(selector, (element) => element.textContent);
}

async function signIn(token) {
  await page.goto(worker.base, { waitUntil: "networkidle0" });
  await page.type("#token", token);
  await page.click("button[type=submit]");
  await page.waitForSelector("nav");
}

async function createKey(name) {
  await page.$eval("#key-name", (input) => (input.value = ""));
  await page.type("#key-name", name);
  await page.click("form button[type=submit]:not([disabled])");
  await page.waitForSelector("[data-testid=new-key]");
  return (await textOf("[data-testid=new-key]")).trim();
}

async function rowOf(name) {
  await page.waitForFunction((n) => [...document.querySelectorAll("td.key-name")].some((td) => td.textContent === n), {}, name);
  return page.evaluateHandle((n) => [...document.querySelectorAll("td.key-name")].find((td) => td.textContent === n).closest("tr"), name);
}

/** Calls `read` until `wanted(value)` holds (usage lands within a second or two), or fails with the last value. */
async function eventually(read, wanted, what, timeout = 15_000) {
  const deadline = Date.now() + timeout;
  let value;
  for (;;) {
    value = await read();
    if (wanted(value)) return value;
    if (Date.now() > deadline) assert.fail(`${what}: still ${JSON.stringify(value)} after ${timeout} ms`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/** The aria-label of the usage chart in `name`'s row, the keys page opened afresh. */
async function weekLabelOf(name) {
  await page.goto(`${worker.base}/#/providers`);
  await page.goto(`${worker.base}/#/keys`);
  const row = await rowOf(name);
  const chart = await row.waitForSelector("[data-testid=usage-chart]");
  return chart.evaluate((svg) => svg.getAttribute("aria-label"));
}

async function screenshot(name) {
  if (!SCREENSHOTS) return;
  mkdirSync("docs/screenshots", { recursive: true });
  await page.screenshot({ path: `docs/screenshots/${name}.png`, fullPage: true });
}

describe("the console", () => {
  test("is served at / with a strict Content-Security-Policy and no third-party request", async () => {
    const response = await fetch(worker.base + "/");
    assert.equal(response.status, 200);
    const csp = response.headers.get("content-security-policy") ?? "";
    assert.match(csp, /default-src 'self'/, csp);
    assert.match(csp, /frame-ancestors 'none'/, csp);
    assert.doesNotMatch(csp, /unsafe-inline/, csp);
    const requested = [];
    page.on("request", (request) => requested.push(request.url()));
    await page.goto(worker.base, { waitUntil: "networkidle0" });
    const elsewhere = requested.filter((url) => !url.startsWith(worker.base));
    assert.deepEqual(elsewhere, [], "the console only talks to the Worker");
    await screenshot("sign-in");
  });

  test("signs in with an owner key and shows the keys page", async () => {
    await signIn(ownerKey);
    assert.match(await textOf("header"), /Acme console/);
    await page.waitForSelector("td.key-name");
    assert.equal(await textOf("td.key-name"), "Owner key");
  });

  test("creates a key, shows it once with a copy button, lists it masked, and the key works", async () => {
    const plaintext = await createKey("CI deploy");
    assert.match(plaintext, /^kw_live_[0-9A-Za-z]{38}$/);
    assert.match(await textOf(".notice"), /cannot be shown again/);
    await page.click("xpath/.//button[contains(., 'Copy key')]");
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), plaintext, "the copy button copies the key");
    await screenshot("keys-created");
    await page.click("xpath/.//button[contains(., 'I have saved it')]");
    assert.equal(await page.$("[data-testid=new-key]"), null, "once dismissed, the key is gone from the page");
    const row = await rowOf("CI deploy");
    const masked = await row.$eval("code", (code) => code.textContent);
    assert.equal(masked, `kw_live_...${plaintext.slice(-4)}`);
    assert.ok(!(await page.content()).includes(plaintext), "the plaintext is nowhere on the page any more");
    const me = await api("/v1/me", plaintext);
    assert.equal(me.status, 200, "the new key works against the API");
    assert.equal((await me.json()).key.name, "CI deploy");
  });

  test("revokes a key after confirming, marks it revoked, and the API refuses it", async () => {
    const plaintext = await createKey("Short-lived");
    await page.click("xpath/.//button[contains(., 'I have saved it')]");
    const row = await rowOf("Short-lived");
    await (await row.$("button.danger")).click();
    await page.waitForFunction(() => ![...document.querySelectorAll("td.key-name")].some((td) => td.textContent === "Short-lived"));
    await page.click("xpath/.//label[contains(., 'Show revoked keys')]/input");
    const revoked = await rowOf("Short-lived");
    assert.equal(await revoked.$eval("td[class^=status]", (td) => td.textContent), "revoked");
    assert.equal((await api("/v1/me", plaintext)).status, 401, "the revoked key gets 401");
    await page.click("xpath/.//label[contains(., 'Show revoked keys')]/input");
  });

  test("shows a key name with HTML as the text it is", async () => {
    const name = "<img src=x onerror=alert(1)>";
    await createKey(name);
    await page.click("xpath/.//button[contains(., 'I have saved it')]");
    const row = await rowOf(name);
    assert.equal(await row.$eval("td.key-name", (td) => td.textContent), name);
    assert.equal(await page.$("td img"), null, "no element was made from the name");
  });

  test("pages through the keys, newest first", async () => {
    for (let i = 0; i < 20; i++) {
      const made = await api("/v1/keys", ownerKey, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ name: `Batch ${i}` }) });
      assert.equal(made.status, 201);
    }
    await page.goto(`${worker.base}/#/providers`);
    await page.goto(`${worker.base}/#/keys`);
    await rowOf("Batch 19");
    const names = () => page.$$eval("td.key-name", (cells) => cells.map((cell) => cell.textContent));
    const first = await names();
    assert.equal(first.length, 20, "a page holds 20 keys");
    assert.equal(first[0], "Batch 19", "newest first");
    await page.click("xpath/.//button[contains(., 'Older')]");
    await rowOf("Owner key");
    const second = await names();
    assert.ok(second.every((name) => !first.includes(name)), `pages overlap: ${second}`);
    await page.click("xpath/.//button[contains(., 'Newer')]");
    await rowOf("Batch 19");
  });

  test("shows an API error with its envelope's message", async () => {
    await page.type("#key-name", "x".repeat(5));
    await page.type("#key-custom", "Not A Capability!");
    await page.click("form button[type=submit]");
    await page.waitForSelector("form .error");
    assert.match(await textOf("form .error"), /\(invalid_request\)$/);
    await screenshot("keys");
  });

  test("shows the provider's refusal beside the key, then saves a good key as valid and default", async () => {
    await page.goto(`${worker.base}/#/providers`);
    const card = "section[data-provider=openai]";
    await page.waitForSelector(`${card} form`);
    await page.$eval(`${card} input[id$=api_host]`, (input) => (input.value = ""));
    await page.type(`${card} input[id$=api_host]`, `${worker.mock.url}/openai/v1`);
    await page.type(`${card} input[id$=api_key]`, `sk-proj-invalid-${Date.now()}`);
    await page.click(`${card} button[type=submit]`);
    await page.waitForSelector(`${card} .error`, { timeout: 15_000 });
    assert.match(await textOf(`${card} .error`), /^Invalid key\. Validation failed\./);
    assert.equal(await page.$(`${card} [data-testid=status]`), null, "nothing was stored");

    await page.$eval(`${card} input[id$=api_key]`, (input) => (input.value = ""));
    await page.type(`${card} input[id$=api_key]`, `sk-proj-good-${Date.now()}`);
    await page.click(`xpath/.//section[@data-provider='openai']//label[contains(., 'Set as the workspace default')]/input`);
    await page.click(`${card} button[type=submit]`);
    await page.waitForSelector(`${card} [data-testid=status]`, { timeout: 15_000 });
    assert.equal(await textOf(`${card} [data-testid=status]`), "valid");
    assert.match(await textOf(`${card} h2`), /default/);
    const stored = await (await api("/v1/providers/openai", ownerKey)).json();
    assert.deepEqual([stored.status, stored.default], ["valid", true], "the API agrees");
    await screenshot("providers");
  });

  test("suggests the models the key was offered, and saves a restricted key unverified on purpose", async () => {
    const openai = "section[data-provider=openai]";
    await page.waitForSelector(`${openai} [data-testid=offered-models] option`);
    const offered = await page.$$eval(`${openai} [data-testid=offered-models] option`, (options) => options.map((o) => o.value));
    assert.ok(offered.includes("gpt-4o"), `offered: ${offered.join(", ")}`);
    assert.equal(await page.$eval(`${openai} input[id$=-model]`, (input) => input.getAttribute("list")), "openai-offered-models");

    const card = "section[data-provider=anthropic]";
    await page.$eval(`${card} input[id$=api_host]`, (input) => (input.value = ""));
    await page.type(`${card} input[id$=api_host]`, `${worker.mock.url}/anthropic`);
    await page.type(`${card} input[id$=api_key]`, `sk-ant-restricted-${Date.now()}`);
    await page.click(`${card} button[type=submit]`);
    await page.waitForSelector(`${card} .error`, { timeout: 15_000 });
    const refusal = await textOf(`${card} .error`);
    assert.match(refusal, /^Key is valid but not allowed to do this\. Check its permissions\./);
    assert.match(refusal, /permission_error/);
    assert.equal(await page.$(`${card} [data-testid=status]`), null, "nothing was stored");

    await page.click(`xpath/.//section[@data-provider='anthropic']//label[contains(., 'Save even if it cannot be verified')]/input`);
    await page.click(`${card} button[type=submit]`);
    await page.waitForSelector(`${card} [data-testid=status]`, { timeout: 15_000 });
    assert.equal(await textOf(`${card} [data-testid=status]`), "unverified (permission_error)");
    const stored = await (await api("/v1/providers/anthropic", ownerKey)).json();
    assert.deepEqual([stored.status, stored.provider_reason], ["unverified", "permission_error"], "the API agrees");
  });

  test("routes an agent to the provider and previews the resolve without the key", async () => {
    await page.goto(`${worker.base}/#/agents`);
    await page.waitForSelector("#agent-id");
    await page.type("#agent-id", "support-bot");
    await page.click("xpath/.//button[contains(., 'Load')]");
    await page.waitForFunction(() => document.querySelector("[data-testid=routing]")?.textContent.startsWith("Not routed"));
    await page.type("#agent-provider", "openai");
    await page.type("#agent-model", "gpt-4o-mini");
    await page.click("xpath/.//button[contains(., 'Set routing')]");
    await page.waitForFunction(() => document.querySelector("[data-testid=routing]")?.textContent.startsWith("Routed byok to openai"));
    // The list above the editor grows by the new row; clicking before it settles could miss.
    await page.waitForFunction(() => document.querySelector("[data-testid=agents]")?.textContent.includes("support-bot"));
    await page.click("xpath/.//button[contains(., 'Preview resolve')]");
    await page.waitForSelector("[data-testid=preview]");
    assert.equal(await textOf("[data-testid=preview]"), "Resolve: byok · openai · gpt-4o-mini");
    assert.ok(!(await page.content()).includes("sk-proj-good-"), "the provider key is not on the page");
    const routing = await (await api("/v1/agents/support-bot/routing", ownerKey)).json();
    assert.deepEqual([routing.mode, routing.provider, routing.model], ["byok", "openai", "gpt-4o-mini"]);
    await screenshot("agents");
  });

  test("lists every routed agent and opens one in the editor", async () => {
    const put = await api("/v1/agents/billing-bot/routing", ownerKey, { method: "PUT", headers: { "content-type": "application/json" }, body: JSON.stringify({ mode: "metered" }) });
    assert.equal(put.status, 200);
    await page.goto(`${worker.base}/#/keys`);
    await page.goto(`${worker.base}/#/agents`);
    await page.waitForFunction(() => document.querySelector("[data-testid=agents]")?.textContent.includes("billing-bot"));
    const agents = await page.$$eval("[data-testid=agents] tbody tr td:first-child", (cells) => cells.map((cell) => cell.textContent));
    assert.deepEqual(agents.slice(0, 2), ["billing-bot", "support-bot"], "most recently changed first");
    await page.click("xpath/.//button[@aria-label='Open billing-bot']");
    await page.waitForFunction(() => document.querySelector("[data-testid=routing]")?.textContent.startsWith("Routed metered"));
    assert.equal(await page.$eval("#agent-id", (input) => input.value), "billing-bot");
    await page.click("xpath/.//button[contains(., 'Remove routing')]");
    await page.waitForFunction(() => !document.querySelector("[data-testid=agents]")?.textContent.includes("billing-bot"));
    assert.equal((await api("/v1/agents/billing-bot/routing", ownerKey)).status, 404, "the API no longer routes it");
  });

  test("shows those actions in the audit trail, newest first", async () => {
    await page.goto(`${worker.base}/#/audit`);
    await page.waitForSelector("td.audit-action");
    const actions = await page.$$eval("td.audit-action", (cells) => cells.map((cell) => cell.textContent));
    for (const action of ["secret.resolved", "agent.routed", "provider.configured", "key.revoked", "key.created"]) {
      assert.ok(actions.includes(action), `${action} is missing from ${actions.join(", ")}`);
    }
    assert.ok(actions.indexOf("agent.routed") < actions.indexOf("provider.configured"), "newest first");
    await screenshot("audit");
  });

  test("rotates the signing secret once, with a signing example that the Worker accepts", async () => {
    await page.goto(`${worker.base}/#/webhooks`);
    await page.waitForSelector("#grace");
    await page.click("xpath/.//button[contains(., 'Rotate the signing secret')]");
    await page.waitForSelector("[data-testid=webhook-secret]");
    const secret = (await textOf("[data-testid=webhook-secret]")).trim();
    assert.match(secret, /^whsec_[A-Za-z0-9+/]{43}=$/);
    await page.click("xpath/.//button[contains(., 'Copy secret')]");
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), secret, "the copy button copies the secret");
    const me = await (await api("/v1/me", ownerKey)).json();
    assert.match(await textOf("[data-testid=signing-example]"), new RegExp(`WS=${me.workspace.id}`));
    const id = `msg_console_${Date.now()}`;
    const timestamp = Math.floor(Date.now() / 1000);
    const body = JSON.stringify({ type: "api_key.revoke", data: { key_id: "key_00000000000000000000" } });
    const hmac = createHmac("sha256", Buffer.from(secret.slice("whsec_".length), "base64")).update(`${id}.${timestamp}.${body}`).digest("base64");
    const delivered = await fetch(`${worker.base}/v1/hooks/${me.workspace.id}`, {
      method: "POST",
      headers: { "content-type": "application/json", "webhook-id": id, "webhook-timestamp": String(timestamp), "webhook-signature": `v1,${hmac}` },
      body,
    });
    assert.equal(delivered.status, 404, "signed with the shown secret: accepted, and the unknown key is not found");
  });

  test("sets the notification endpoint with its secret shown once", async () => {
    const url = `${worker.mock.url}/receiver/ok/console`;
    await page.type("#endpoint-url", url);
    await page.click("xpath/.//button[contains(., 'Set the endpoint')]");
    await page.waitForSelector("[data-testid=endpoint-secret]");
    const endpointSecret = (await textOf("[data-testid=endpoint-secret]")).trim();
    assert.match(endpointSecret, /^whsec_/);
    await page.click("xpath/.//button[contains(., 'Copy endpoint secret')]");
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), endpointSecret, "the copy button copies the endpoint secret");
    assert.match(await textOf("[data-testid=endpoint]"), new RegExp(url.replace(/[.]/g, "\\.")));
    const stored = await (await api("/v1/webhooks/endpoint", ownerKey)).json();
    assert.equal(stored.url, url);
    await screenshot("webhooks");
  });

  test("signs out and leaves no key in localStorage, sessionStorage or cookies", async () => {
    await page.click("xpath/.//button[contains(., 'Sign out')]");
    await page.waitForSelector("#token");
    const stored = await page.evaluate(() => ({ local: localStorage.length, session: sessionStorage.length, cookie: document.cookie }));
    assert.deepEqual(stored, { local: 0, session: 0, cookie: "" });
    const cookies = await browser.defaultBrowserContext().cookies();
    assert.deepEqual(cookies, []);
  });

  test("pre-ticks the workspace's default capabilities on the create form", async () => {
    const made = await fetch(`${worker.base}/v1/workspaces`, {
      method: "POST",
      headers: { authorization: `Bearer ${process.env.ADMIN_TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify({ name: "Hooli", default_capabilities: ["keys:read", "desktop:chat"] }),
    });
    assert.equal(made.status, 201);
    await signIn((await made.json()).key.key);
    await page.waitForFunction(() => document.querySelectorAll("[data-testid=capabilities] input:checked").length === 2);
    const ticked = await page.$$eval("[data-testid=capabilities] input:checked", (inputs) => inputs.map((input) => input.value));
    assert.deepEqual(ticked.sort(), ["desktop:chat", "keys:read"], "exactly the workspace's defaults are ticked");
    await page.click("xpath/.//fieldset[@data-testid='capabilities']//label[contains(., 'keys:read')]/input");
    const plaintext = await createKey("Chat only");
    const me = await (await api("/v1/me", plaintext)).json();
    assert.deepEqual(me.key.capabilities, ["desktop:chat"], "the key has what was left ticked");
    await page.click("xpath/.//button[contains(., 'Sign out')]");
  });

  test("the operator creates a workspace (owner key shown once), makes it read-only, and its key sees writes disabled", async () => {
    await signIn(process.env.ADMIN_TOKEN);
    await page.goto(`${worker.base}/#/workspaces`);
    await page.waitForSelector("#workspace-name");
    await page.type("#workspace-name", "Globex");
    await page.type("#workspace-defaults", "desktop:read, desktop:chat");
    await page.click("xpath/.//button[contains(., 'Create workspace')]");
    await page.waitForSelector("[data-testid=owner-key]");
    const owner = (await textOf("[data-testid=owner-key]")).trim();
    await page.click("xpath/.//button[contains(., 'Copy owner key')]");
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), owner, "the copy button copies the owner key");
    const me = await (await api("/v1/me", owner)).json();
    assert.equal(me.workspace.name, "Globex", "the shown owner key works");
    await page.click("xpath/.//button[contains(., 'I have handed it over')]");
    const row = `tr[data-workspace=${me.workspace.id}]`;
    await page.waitForSelector(row);
    await page.click(`xpath/.//tr[@data-workspace='${me.workspace.id}']//button[contains(., 'Make read-only')]`);
    // "Make writable" appears only once the list is read back with the change.
    await page.waitForSelector(`xpath/.//tr[@data-workspace='${me.workspace.id}']//button[contains(., 'Make writable')]`);
    const stored = await (await fetch(`${worker.base}/v1/workspaces/${me.workspace.id}`, { headers: { authorization: `Bearer ${process.env.ADMIN_TOKEN}` } })).json();
    assert.deepEqual([stored.read_only, stored.default_capabilities], [true, ["desktop:read", "desktop:chat"]]);
    await screenshot("workspaces");

    await page.click("xpath/.//button[contains(., 'Sign out')]");
    await signIn(owner);
    await page.waitForSelector("#key-name");
    assert.match(await textOf("main"), /read-only/);
    assert.equal(await page.$eval("form button[type=submit]", (b) => b.disabled), true, "create is disabled in a read-only workspace");
    await page.click("xpath/.//button[contains(., 'Sign out')]");
  });

  test("the operator reports a leaked key and it is revoked", async () => {
    const leaked = await worker.createOwnerKey("Initech");
    await signIn(process.env.ADMIN_TOKEN);
    await page.goto(`${worker.base}/#/leaks`);
    await page.waitForSelector("#leak-tokens");
    await page.type("#leak-tokens", leaked);
    await page.click("xpath/.//button[contains(., 'Report and revoke')]");
    await page.waitForSelector("[data-testid=leak-labels] li");
    assert.match(await textOf("[data-testid=leak-labels]"), /revoked \(true positive\)/);
    assert.equal((await api("/v1/me", leaked)).status, 401, "the leaked key no longer works");
    await screenshot("leaks");
    await page.click("xpath/.//button[contains(., 'Sign out')]");
  });

  // The workspace whose policies the next three tests change, one after the other.
  let policied;

  /** The row of workspace `id` on the operator's page, its policy editor open. */
  async function policiesOf(id) {
    const row = `tr[data-workspace=${id}]`;
    await page.waitForSelector(`${row} [data-testid=policies] details`);
    if (!(await page.$eval(`${row} details`, (details) => details.open))) await page.click(`${row} summary`);
    return row;
  }

  /** Clicks Save policies in `row` and waits for the API's answer to the PATCH it sends. */
  async function savePolicies(row, id) {
    const [answer] = await Promise.all([
      page.waitForResponse((response) => response.url().endsWith(`/v1/workspaces/${id}`) && response.request().method() === "PATCH"),
      page.click(`${row} [data-testid=policies] button[type=submit]`),
    ]);
    return answer;
  }

  const storedWorkspace = async (id) => (await api(`/v1/workspaces/${id}`, process.env.ADMIN_TOKEN)).json();

  test("the operator sets a workspace's key lifetime in days and a leak policy that expires after a grace", async () => {
    const made = await api("/v1/workspaces", process.env.ADMIN_TOKEN, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ name: "Umbrella" }) });
    assert.equal(made.status, 201);
    policied = (await made.json()).workspace.id;
    await signIn(process.env.ADMIN_TOKEN);
    await page.goto(`${worker.base}/#/workspaces`);
    const row = await policiesOf(policied);
    assert.equal(await textOf(`${row} [data-testid=lifetime]`), "no limit");
    assert.equal(await textOf(`${row} [data-testid=leak-policy]`), "revoke at once");
    assert.equal(await page.$eval(`#lifetime-${policied}`, (input) => input.disabled), true, "no limit: the lifetime is off");
    assert.equal(await page.$eval(`#grace-${policied}`, (input) => input.disabled), true, "revoke: no grace");

    await page.click(`#limited-${policied}`);
    await page.type(`#lifetime-${policied}`, "90");
    await page.select(`#lifetime-${policied}-unit`, "86400");
    await page.select(`#leak-action-${policied}`, "expire");
    assert.equal(await page.$eval(`#grace-${policied}`, (input) => input.disabled), false, "expire takes a grace");
    await page.type(`#grace-${policied}`, "2");
    await page.select(`#grace-${policied}-unit`, "3600");
    assert.equal((await savePolicies(row, policied)).status(), 200);
    await page.waitForFunction((r) => document.querySelector(`${r} [data-testid=lifetime]`)?.textContent === "at most 90 days", {}, row);
    assert.equal(await textOf(`${row} [data-testid=leak-policy]`), "expire after 2 hours");
    const stored = await storedWorkspace(policied);
    assert.deepEqual([stored.max_key_lifetime_seconds, stored.leak_policy], [90 * 86_400, { action: "expire", grace_seconds: 7_200 }], "the API agrees");

    await policiesOf(policied);
    const shown = await page.$$eval([`#lifetime-${policied}`, `#lifetime-${policied}-unit`, `#grace-${policied}`, `#grace-${policied}-unit`].join(","), (fields) => fields.map((f) => f.value));
    assert.deepEqual(shown, ["90", "86400", "2", "3600"], "the editor opened again holds what was saved");
  });

  test("the operator removes a workspace's key lifetime policy", async () => {
    const row = await policiesOf(policied);
    await page.click(`#limited-${policied}`);
    assert.equal((await savePolicies(row, policied)).status(), 200);
    await page.waitForFunction((r) => document.querySelector(`${r} [data-testid=lifetime]`)?.textContent === "no limit", {}, row);
    const stored = await storedWorkspace(policied);
    assert.equal(stored.max_key_lifetime_seconds, null, "no policy any more");
    assert.deepEqual(stored.leak_policy, { action: "expire", grace_seconds: 7_200 }, "the leak policy is kept");
  });

  test("a grace out of range shows the API's refusal and changes nothing", async () => {
    const before = await storedWorkspace(policied);
    const row = await policiesOf(policied);
    await page.click(`#limited-${policied}`);
    await page.type(`#lifetime-${policied}`, "30");
    await page.select(`#grace-${policied}-unit`, "1");
    for (const grace of ["0", "100000"]) {
      await page.$eval(`#grace-${policied}`, (input) => (input.value = ""));
      await page.type(`#grace-${policied}`, grace);
      assert.equal((await savePolicies(row, policied)).status(), 400, `a grace of ${grace} s`);
      await page.waitForSelector(`${row} [data-testid=policies] .error`);
      assert.match(await textOf(`${row} [data-testid=policies] .error`), /leak_policy\.grace_seconds.*\(invalid_request\)$/);
      assert.equal(await page.$eval(`#grace-${policied}`, (input) => input.value), grace, "what was typed stays, to be corrected");
      assert.deepEqual(await storedWorkspace(policied), before, "neither policy changed");
    }
    assert.equal(await textOf(`${row} [data-testid=lifetime]`), "no limit");
    assert.equal(await textOf(`${row} [data-testid=leak-policy]`), "expire after 2 hours");
    await page.click("xpath/.//button[contains(., 'Sign out')]");
  });

  test("fits a phone's width without sideways scrolling, tables scrolling inside their cards", async () => {
    await page.setViewport({ width: 390, height: 844, isMobile: true });
    await signIn(ownerKey);
    for (const path of ["keys", "providers", "agents", "webhooks", "audit"]) {
      await page.goto(`${worker.base}/#/${path}`);
      await page.waitForSelector("main section");
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 0, `#/${path} is ${overflow}px wider than the phone`);
    }
    await page.goto(`${worker.base}/#/keys`);
    await page.waitForSelector("td.key-name");
    await screenshot("keys-phone");
    await page.setViewport({ width: 1280, height: 900 });
  });
  test("shows the contract's error beside the allowlist field it names", async () => {
    // Leaving the phone's viewport reloaded the page, which forgot the key.
    await signIn(ownerKey);
    await page.waitForSelector("#key-allowed-ips");
    await page.$eval("#key-name", (input) => (input.value = ""));
    await page.type("#key-name", "Bad allowlist");
    await page.type("#key-allowed-ips", "203.0.113.7\n10.0.0.300");
    await page.click("form button[type=submit]:not([disabled])");
    await page.waitForSelector("#error-allowed_ips");
    assert.match(await textOf("#error-allowed_ips"), /\(invalid_request\)$/);
    assert.equal(await page.$eval("#key-allowed-ips", (area) => area.getAttribute("aria-invalid")), "true");
    assert.equal(await page.$("[data-testid=new-key]"), null, "no key was made");
    await page.$eval("#key-allowed-ips", (area) => (area.value = ""));
    await page.$eval("#key-allowed-ips", (area) => area.dispatchEvent(new Event("input", { bubbles: true })));
  });

  test("creates a key with credits and an allowlist, and its row shows the credits and the uses of the last 7 days", async () => {
    await page.type("#key-allowed-ips", "203.0.113.7\n2001:db8::/32");
    await page.type("#key-credits", "50");
    await page.type("#key-refill-amount", "100");
    await page.select("#key-refill-interval", "month");
    const plaintext = await createKey("Metered server");
    const made = await (await api("/v1/me", plaintext, { headers: { "cf-connecting-ip": "203.0.113.7" } })).json();
    assert.deepEqual([made.key.allowed_ips, made.key.credits], [["203.0.113.7", "2001:db8::/32"], { remaining: 49, refill: { amount: 100, interval: "month" } }]);
    await page.click("xpath/.//button[contains(., 'I have saved it')]");
    for (const ip of ["203.0.113.7", "2001:db8:1::5"]) {
      assert.equal((await api("/v1/me", plaintext, { headers: { "cf-connecting-ip": ip } })).status, 200, `allowed from ${ip}`);
    }
    const refused = await api("/v1/me", plaintext, { headers: { "cf-connecting-ip": "198.51.100.1" } });
    assert.equal(refused.status, 403);
    assert.equal((await refused.json()).error.code, "ip_not_allowed");

    // The list shows usage and balances as the key authority last wrote them, within a second
    // or so of each use.
    const creditsOf = async () => (await rowOf("Metered server")).$eval("[data-testid=credits]", (td) => td.textContent);
    const [label, credits] = await eventually(
      async () => [await weekLabelOf("Metered server"), await creditsOf()],
      ([l, c]) => l === "Last 7 days: 4 uses (1 refused)" && c === "47 / 100 per month",
      "the row's chart and credits",
    );
    assert.equal(label, "Last 7 days: 4 uses (1 refused)");
    assert.equal(credits, "47 / 100 per month", "three valid uses spent 3");
    const row = await rowOf("Metered server");
    assert.equal(await row.$$eval("[data-testid=usage-chart] > g", (bars) => bars.length), 7, "one bar a day");
    assert.equal(await row.$eval("[data-testid=usage-chart] > title", (title) => title.textContent), label);
    const unused = await rowOf("Batch 19");
    assert.equal(await unused.$eval("[data-testid=credits]", (td) => td.textContent), "—", "a key without credits is unmetered");
    assert.equal(await unused.$eval("[data-testid=usage-chart]", (svg) => svg.getAttribute("aria-label")), "Last 7 days: 0 uses");

    const asked = [];
    const count = (request) => request.url().includes("/v1/keys/usage") && asked.push(request.url());
    page.on("request", count);
    await weekLabelOf("Metered server");
    await page.waitForFunction(() => document.querySelectorAll("[data-testid=usage-chart]").length === document.querySelectorAll("td.key-name").length);
    page.off("request", count);
    assert.equal(asked.length, 1, `one usage call for the whole page: ${asked.join(", ")}`);
    assert.match(asked[0], /granularity=day/);
  });

  test("the key page shows the allowlist and the last 48 hours by the hour, and changes the credits", async () => {
    await page.click("xpath/.//td[@class='key-name']/a[.='Metered server']");
    await page.waitForSelector("[data-testid=allowlist]");
    const id = decodeURIComponent(new URL(page.url()).hash.replace("#/keys/", ""));
    assert.match(id, /^key_/);
    assert.deepEqual(await page.$$eval("[data-testid=allowlist] li", (items) => items.map((li) => li.textContent)), ["203.0.113.7", "2001:db8::/32"]);
    const hourly = "[data-testid=hourly-usage] [data-testid=usage-chart]";
    await page.waitForSelector(hourly);
    assert.equal(await page.$eval(hourly, (svg) => svg.getAttribute("aria-label")), "Last 48 hours: 4 uses (1 refused)");
    assert.equal(await page.$$eval(`${hourly} > g`, (bars) => bars.length), 48, "one bar an hour");
    const totals = await page.$$eval("[data-testid=usage-totals] dt", (terms) => Object.fromEntries(terms.map((dt) => [dt.textContent, dt.nextElementSibling.textContent])));
    assert.deepEqual(totals, { valid: "3", rate_limited: "0", credits_exhausted: "0", insufficient_capabilities: "0", ip_not_allowed: "1" });
    assert.equal(await textOf("[data-testid=credits]"), "47 / 100 per month");

    await page.type("#credits-amount", "25");
    await page.click("xpath/.//button[contains(., 'Add credits')]");
    await page.waitForFunction(() => document.querySelector("[data-testid=credits]").textContent === "72 / 100 per month");
    assert.equal((await (await api(`/v1/keys/${id}`, ownerKey)).json()).credits.remaining, 72, "the API agrees");

    await page.type("#credits-amount", "0");
    await page.click("xpath/.//button[contains(., 'Add credits')]");
    await page.waitForSelector("#credits-error");
    assert.match(await textOf("#credits-error"), /`add`.*\(invalid_request\)$/);

    await page.select("#credits-change", "set");
    await page.$eval("#credits-amount", (input) => (input.value = ""));
    await page.type("#credits-amount", "10");
    await page.click("xpath/.//button[contains(., 'Set balance')]");
    await page.waitForFunction(() => document.querySelector("[data-testid=credits]").textContent === "10 / 100 per month");
    assert.equal(await page.$("#credits-error"), null, "the error is gone once a change succeeds");
    assert.equal((await (await api(`/v1/keys/${id}`, ownerKey)).json()).credits.remaining, 10, "the API agrees");
    await screenshot("key");

    await page.click("xpath/.//a[contains(., 'All keys')]");
    const row = await rowOf("Metered server");
    assert.equal(await row.$eval("[data-testid=credits]", (td) => td.textContent), "10 / 100 per month");
  });

  test("the key page of a key without an allowlist or credits says so", async () => {
    const id = (await (await api("/v1/me", ownerKey)).json()).key.id;
    await page.goto(`${worker.base}/#/keys/${id}`);
    await page.waitForSelector("[data-testid=allowlist]");
    assert.equal(await textOf("[data-testid=allowlist]"), "Any address");
    assert.equal(await textOf("[data-testid=credits]"), "—");
    await page.waitForSelector("[data-testid=hourly-usage] [data-testid=usage-chart]");
    assert.match(await page.$eval("[data-testid=hourly-usage] [data-testid=usage-chart]", (svg) => svg.getAttribute("aria-label")), /^Last 48 hours: [1-9]\d* uses/);
    assert.equal(await textOf("nav a[aria-current=page]"), "Keys");
  });
});
