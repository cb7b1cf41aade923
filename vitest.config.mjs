// End-to-end tests: the built wasm Worker in workerd, with real local D1 and KV.
// Build first (`npm test` does): the plugin runs the Worker from build/, it does not build it.
import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

export const TEST_ADMIN_TOKEN = "kwadmin_test_0123456789abcdefghijklmnopqrstuvwxyz";

export default defineConfig(async () => {
  const migrations = await readD1Migrations("./migrations");
  return {
    plugins: [
      cloudflareTest(({ inject }) => ({
        wrangler: { configPath: "./wrangler.toml" },
        miniflare: {
          bindings: {
            TEST_MIGRATIONS: migrations,
            ADMIN_TOKEN: TEST_ADMIN_TOKEN,
            VAULT_KEKS: "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
            KEY_PREFIX: "kw_live_",
            ALLOW_INSECURE_PROVIDER_HOSTS: "true",
            // The mock provider answers "slow" keys after 15 s; the Worker gives up after this.
            PROVIDER_TIMEOUT_MS: "1500",
            // Credits refilled "daily" refill every 3 s here, so a test sees the day turn.
            CREDIT_DAY_MS: "3000",
            MOCK_PROVIDER: `http://127.0.0.1:${inject("mockProviderPort")}`,
            // GitHub's secret scanning keys, as the mock provider publishes them.
            SECRET_SCANNING_KEYS_URL: `http://127.0.0.1:${inject("mockProviderPort")}/github/keys`,
          },
        },
      })),
    ],
    test: {
      include: ["tests/e2e/**/*.test.js"],
      setupFiles: ["tests/e2e/setup.js"],
      globalSetup: ["tests/e2e/global-setup.mjs"],
      reporters: ["default"],
      // Some tests wait on purpose: for a grace period to end, or for a fresh failed-attempt
      // window (up to 10 s), so they get more than vitest's default 5 s.
      testTimeout: 30_000,
      // Worker log lines are shown for failing tests only.
      silent: "passed-only",
    },
  };
});
