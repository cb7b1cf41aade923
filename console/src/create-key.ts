// The create-key form: name, capabilities (the workspace's defaults pre-ticked), lifetime, rate
// limit, subject, and where (an IP allowlist) and how much (credits, with a refill) it may be
// used. The contract's error shows beside the field it names.
import { useEffect, useState } from "preact/hooks";
import type { components } from "../../clients/typescript/index";
import { describe, ErrorLine, fieldOf, html, type Session } from "./ui";

type KeyWithSecret = components["schemas"]["KeyObjectWithSecret"];

const RESERVED = ["keys:read", "keys:write", "keys:verify", "providers:read", "providers:write", "secrets:resolve", "webhooks:manage", "audit:read"];

/** The form's fields, by the names the contract gives them: an error naming one (or a field
 * inside it, like `capabilities[2]`) shows beside it. */
const ANCHORS = [
  "name",
  "capabilities",
  "expires_in",
  "rate_limit.limit",
  "rate_limit.window_seconds",
  "subject",
  "allowed_ips",
  "credits.remaining",
  "credits.refill.amount",
  "credits.refill.interval",
];

function anchorOf(field: string | null): string | null {
  if (!field) return null;
  const within = ANCHORS.find((a) => field === a || field.startsWith(`${a}.`) || field.startsWith(`${a}[`));
  // `credits` or `credits.refill` itself (e.g. an unknown field inside it): its first field.
  return within ?? ANCHORS.find((a) => a.startsWith(`${field}.`)) ?? null;
}

interface Failure {
  message: string;
  anchor: string | null;
}

/** One address or range a line, blank lines dropped. */
function lines(text: string): string[] {
  return text.split("\n").map((line) => line.trim()).filter(Boolean);
}

export function CreateKey({ session, onCreated }: { session: Session; onCreated: (key: KeyWithSecret) => void }) {
  const [name, setName] = useState("");
  // The workspace's defaults come pre-ticked, so a key starts as narrow as the operator chose;
  // widening it is a deliberate tick.
  const [defaults, setDefaults] = useState<string[]>([]);
  const [chosen, setChosen] = useState<string[]>([]);
  const [custom, setCustom] = useState("");
  const [expiresIn, setExpiresIn] = useState("");
  const [limit, setLimit] = useState("");
  const [windowSeconds, setWindowSeconds] = useState("60");
  const [subject, setSubject] = useState("");
  const [allowedIps, setAllowedIps] = useState("");
  const [credits, setCredits] = useState("");
  const [refillAmount, setRefillAmount] = useState("");
  const [refillInterval, setRefillInterval] = useState<"day" | "month">("day");
  const [failure, setFailure] = useState<Failure | null>(null);
  const [busy, setBusy] = useState(false);
  const readOnly = session.me?.workspace.read_only ?? false;
  const fail = (message: string, anchor: string | null = null) => setFailure({ message, anchor });

  useEffect(() => {
    session.api.GET("/v1/workspace").then(({ data, error }) => {
      if (error || !data) return fail(describe(error));
      setDefaults(data.default_capabilities);
      setChosen(data.default_capabilities);
    });
  }, []);

  const offered = [...RESERVED, ...defaults.filter((capability) => !RESERVED.includes(capability))];
  const toggle = (capability: string) =>
    setChosen(chosen.includes(capability) ? chosen.filter((c) => c !== capability) : [...chosen, capability]);

  const submit = async (event: Event) => {
    event.preventDefault();
    setFailure(null);
    let parsedSubject: Record<string, unknown> | undefined;
    if (subject.trim()) {
      try {
        parsedSubject = JSON.parse(subject);
      } catch {
        return fail("The subject must be a JSON object, e.g. {\"user_id\": \"u_123\"}.", "subject");
      }
    }
    const extra = custom.split(/[\s,]+/).filter(Boolean);
    const body: components["schemas"]["KeyCreateRequest"] = { name, capabilities: [...new Set([...chosen, ...extra])] };
    if (expiresIn) body.expires_in = Number(expiresIn);
    if (limit) body.rate_limit = { limit: Number(limit), window_seconds: Number(windowSeconds) };
    if (parsedSubject) body.subject = parsedSubject;
    const ips = lines(allowedIps);
    if (ips.length) body.allowed_ips = ips;
    // A refill without a balance goes as it is: the contract says what is missing.
    if (credits || refillAmount) {
      const metered: Record<string, unknown> = {};
      if (credits) metered.remaining = Number(credits);
      if (refillAmount) metered.refill = { amount: Number(refillAmount), interval: refillInterval };
      body.credits = metered as NonNullable<typeof body.credits>;
    }
    setBusy(true);
    const { data, error } = await session.api.POST("/v1/keys", { body });
    setBusy(false);
    if (error || !data) return fail(describe(error), anchorOf(fieldOf(error)));
    setName("");
    setCustom("");
    setChosen(defaults);
    setAllowedIps("");
    setCredits("");
    setRefillAmount("");
    onCreated(data);
  };

  /** The error beside `anchor`, when it names that field. */
  const errorAt = (anchor: string) =>
    failure?.anchor === anchor ? html`<p class="error" role="alert" id=${`error-${anchor}`}>${failure.message}</p>` : null;
  /** aria-invalid and aria-describedby for the field the error names. */
  const marks = (anchor: string) => (failure?.anchor === anchor ? { "aria-invalid": "true", "aria-describedby": `error-${anchor}` } : {});
  const value = (set: (v: string) => void) => (e: Event) => set((e.target as HTMLInputElement).value);

  return html`<section class="card">
    <h2>Create a key</h2>
    ${readOnly && html`<p class="notice">This workspace is read-only: keys cannot be created until the operator makes it writable.</p>`}
    <form onSubmit=${submit}>
      <label for="key-name">Name</label>
      <input id="key-name" type="text" required maxlength="200" value=${name} onInput=${value(setName)} ...${marks("name")} />
      ${errorAt("name")}
      <fieldset data-testid="capabilities">
        <legend>Capabilities</legend>
        <p class="muted">The workspace's defaults are ticked. Tick only what this key needs.</p>
        ${offered.map(
          (capability) =>
            html`<label class="inline"><input type="checkbox" value=${capability} checked=${chosen.includes(capability)} onChange=${() => toggle(capability)} /> <code>${capability}</code>${defaults.includes(capability) ? html` <span class="muted">(default)</span>` : ""}</label>`,
        )}
        <label for="key-custom">Your product's capabilities (comma or space separated, e.g. <code>desktop:chat</code>)</label>
        <input id="key-custom" type="text" value=${custom} onInput=${value(setCustom)} ...${marks("capabilities")} />
        ${errorAt("capabilities")}
      </fieldset>
      <label for="key-expires">Expires in (seconds, empty for never)</label>
      <input id="key-expires" type="number" min="1" value=${expiresIn} onInput=${value(setExpiresIn)} ...${marks("expires_in")} />
      ${errorAt("expires_in")}
      <label for="key-limit">Rate limit (requests per window, empty for none)</label>
      <input id="key-limit" type="number" min="1" max="100000" value=${limit} onInput=${value(setLimit)} ...${marks("rate_limit.limit")} />
      ${errorAt("rate_limit.limit")}
      <label for="key-window">Rate-limit window (seconds)</label>
      <input id="key-window" type="number" min="1" max="3600" value=${windowSeconds} onInput=${value(setWindowSeconds)} ...${marks("rate_limit.window_seconds")} />
      ${errorAt("rate_limit.window_seconds")}
      <label for="key-subject">Subject (JSON, optional)</label>
      <textarea id="key-subject" value=${subject} onInput=${value(setSubject)} ...${marks("subject")}></textarea>
      ${errorAt("subject")}
      <fieldset data-testid="metering">
        <legend>Where and how much (optional)</legend>
        <label for="key-allowed-ips">Allowed IPs (one address or CIDR range a line, e.g. <code>203.0.113.7</code> or <code>2001:db8::/32</code>; empty for any address)</label>
        <textarea id="key-allowed-ips" value=${allowedIps} onInput=${value(setAllowedIps)} ...${marks("allowed_ips")}></textarea>
        ${errorAt("allowed_ips")}
        <label for="key-credits">Credits (each use spends 1; empty for unmetered)</label>
        <input id="key-credits" type="number" min="0" value=${credits} onInput=${value(setCredits)} ...${marks("credits.remaining")} />
        ${errorAt("credits.remaining")}
        <label for="key-refill-amount">Refill the balance to (credits, empty for no refill)</label>
        <input id="key-refill-amount" type="number" min="1" value=${refillAmount} onInput=${value(setRefillAmount)} ...${marks("credits.refill.amount")} />
        ${errorAt("credits.refill.amount")}
        <label for="key-refill-interval">Refill at the start of each</label>
        <select id="key-refill-interval" value=${refillInterval} onChange=${(e: Event) => setRefillInterval((e.target as HTMLSelectElement).value as "day" | "month")} ...${marks("credits.refill.interval")}>
          <option value="day">day (UTC)</option>
          <option value="month">month (UTC)</option>
        </select>
        ${errorAt("credits.refill.interval")}
      </fieldset>
      <div class="row"><button type="submit" disabled=${busy || readOnly}>${busy ? "Creating…" : "Create key"}</button></div>
      <${ErrorLine} error=${failure && !failure.anchor ? failure.message : null} />
    </form>
  </section>`;
}
