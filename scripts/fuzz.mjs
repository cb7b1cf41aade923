// Schemathesis against the Worker under `wrangler dev`: every check on (but one, see
// tests/fuzz/schemathesis.toml), deterministic generation, a bounded number of cases and a
// hard time bound.
// Credentials: the operator token and a fresh workspace's owner key, by security scheme.
import { spawn } from "node:child_process";
import { startLocalWorker } from "./local-worker.mjs";

const port = Number(process.env.FUZZ_PORT ?? 8798);
const adminToken = process.env.ADMIN_TOKEN;
// The whole run, the Worker's start included, ends by this bound whatever happens.
const HARD_LIMIT_MS = 240_000;

const worker = await startLocalWorker({
  port,
  state: process.env.FUZZ_STATE,
  adminToken,
  vars: { PROVIDER_TIMEOUT_MS: "1500" },
});
const ownerKey = await worker.createOwnerKey("schemathesis");

const started = Date.now();
const args = [
  "--config-file", "tests/fuzz/schemathesis.toml",
  "run", `${worker.base}/openapi.json`,
];
const fuzz = spawn(process.env.SCHEMATHESIS_BIN, args, {
  stdio: "inherit",
  env: {
    ...process.env,
    KW_ADMIN_TOKEN: adminToken,
    KW_OWNER_KEY: ownerKey,
    KW_MOCK_PROVIDER: `http://127.0.0.1:${worker.mock.port}`,
    PYTHONPATH: "tests/fuzz",
    NO_COLOR: "1",
  },
});
const killer = setTimeout(() => {
  console.error(`schemathesis ran past ${HARD_LIMIT_MS / 1000} s: stopped`);
  fuzz.kill("SIGKILL");
}, HARD_LIMIT_MS);
const code = await new Promise((resolve) => fuzz.on("exit", (status, signal) => resolve(signal ? 1 : status)));
clearTimeout(killer);
worker.stop();
console.log(`schemathesis finished in ${Math.round((Date.now() - started) / 1000)} s with exit code ${code}`);
process.exit(code);
