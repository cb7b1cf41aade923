// Measures what provider model lists cost the Worker's memory: starts `wrangler dev` on
// loopback with the mock provider, configures a provider whose /models answers lists of growing
// size (under the 4 MiB cap, then past it, declared and chunked), and prints workerd's resident
// memory (VmRSS) and its peak (VmHWM) from /proc after each step. It prints figures; it asserts
// nothing. Run it with `bash scripts/model-list-memory.sh`; MEMORY_ROUNDS (calls per step, 5),
// MEMORY_SERIES (calls per series, 100) and MEMORY_LOGS=1 (show the Worker's log lines) tune it.
import { readFileSync, readdirSync } from "node:fs";
import { startLocalWorker } from "./local-worker.mjs";

const port = Number(process.env.MEMORY_PORT ?? 8798);
const rounds = Number(process.env.MEMORY_ROUNDS ?? 5);
const seriesCalls = Number(process.env.MEMORY_SERIES ?? 100);
const base = `http://127.0.0.1:${port}`;
const adminToken = process.env.ADMIN_TOKEN;
const MIB = 1024 * 1024;

function status(pid) {
  try {
    return readFileSync(`/proc/${pid}/status`, "utf8");
  } catch {
    return "";
  }
}

function field(text, name) {
  const match = new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(text);
  return match ? Number(match[1]) : 0;
}

/** The workerd processes started under `root` (wrangler runs workerd as a descendant). */
function workerdPids(root) {
  const parents = new Map();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const ppid = /^PPid:\s+(\d+)/m.exec(status(entry));
    if (ppid) parents.set(Number(entry), Number(ppid[1]));
  }
  const descends = (pid) => {
    for (let at = pid; at > 1; at = parents.get(at) ?? 0) if (at === root) return true;
    return false;
  };
  return [...parents.keys()].filter((pid) => descends(pid) && /^Name:\s+workerd$/m.test(status(pid)));
}

/** The largest workerd process is the one running the Worker; the other is wrangler's proxy. */
function memory(pids) {
  const texts = pids.map(status);
  const largest = texts.reduce((a, b) => (field(b, "VmRSS") > field(a, "VmRSS") ? b : a));
  return { rssMb: field(largest, "VmRSS") / 1024, peakMb: field(largest, "VmHWM") / 1024 };
}

// A mock provider on loopback stands in for OpenAI.
const { mock, wrangler, stop, createOwnerKey } = await startLocalWorker({
  port,
  state: process.env.MEMORY_STATE,
  logs: Boolean(process.env.MEMORY_LOGS),
  adminToken,
});

try {
  const pids = workerdPids(wrangler.pid);
  if (pids.length === 0) throw new Error("no workerd process found under wrangler");
  const owner = { authorization: `Bearer ${await createOwnerKey("memory")}`, "content-type": "application/json" };
  const configure = async (apiKey) => {
    const response = await fetch(`${base}/v1/providers/openai`, {
      method: "PUT",
      headers: owner,
      body: JSON.stringify({ api_key: apiKey, api_host: `${mock.url}/openai/v1`, model: "gpt-4o" }),
    });
    const body = await response.json();
    return `${response.status} ${body.status ?? body.error?.code}`;
  };

  const rows = [];
  const step = async (label, apiKey) => {
    let answer = "";
    for (let i = 0; i < rounds; i++) answer = await configure(apiKey);
    rows.push({ step: label, answer, ...memory(pids) });
  };
  for (let i = 0; i < rounds; i++) await configure("sk-warmup");
  rows.push({ step: "after warm-up (5-model list)", answer: "", ...memory(pids) });
  await step("1 MiB list", `sk-listbytes-${1 * MIB}`);
  await step("4 MiB - 4 KiB list (under the cap)", `sk-listbytes-${4 * MIB - 4096}`);
  await step("4 MiB + 4 KiB list, declared", `sk-listbytes-${4 * MIB + 4096}`);
  await step("8 MiB list, declared", `sk-listbytes-${8 * MIB}`);
  await step("8 MiB list, chunked", `sk-listbytes-${8 * MIB}-chunked`);
  await step("32 MiB list, chunked", `sk-listbytes-${32 * MIB}-chunked`);

  // Garbage (the stream's chunks) is collected when V8 decides: a long series shows whether the
  // resident memory levels off, which is what an unbounded parse would not do.
  const series = async (apiKey) => {
    const points = [];
    for (let i = 1; i <= seriesCalls; i++) {
      await configure(apiKey);
      if (i % 20 === 0) points.push(`${i}: ${memory(pids).rssMb.toFixed(0)}`);
    }
    return points.join(", ");
  };
  // The same number of calls with a 5-model list first: what storage and the runtime grow by anyway.
  const control = await series("sk-small-list");
  const long = await series(`sk-listbytes-${4 * MIB - 4096}`);

  console.log(`workerd pids ${pids.join(", ")}; ${rounds} configure calls per step`);
  console.log("step".padEnd(40), "last answer".padEnd(28), "VmRSS MB".padStart(9), "VmHWM MB".padStart(9));
  for (const row of rows) {
    console.log(row.step.padEnd(40), row.answer.padEnd(28), row.rssMb.toFixed(1).padStart(9), row.peakMb.toFixed(1).padStart(9));
  }
  console.log(`VmRSS MB after N more calls with a 5-model list:         ${control}`);
  console.log(`VmRSS MB after N more calls with the 4 MiB - 4 KiB list: ${long}`);
} finally {
  stop();
}
