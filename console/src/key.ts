// One key's page (#/keys/<id>): what it is, its hourly usage over the last 48 hours, where it
// may be used from, and its credits with a form to change them.
import { useEffect, useState } from "preact/hooks";
import type { components } from "../../clients/typescript/index";
import { CreditsForm, creditsText } from "./credits";
import { status } from "./keys";
import { describe, ErrorLine, holds, html, when, type Session } from "./ui";
import { bars, describeHour, HOUR_MS, instant, OUTCOMES, UsageChart, windowStart, type Bucket } from "./usage";

type Key = components["schemas"]["KeyObject"];

const HOURS = 48;

function HourlyUsage({ from, buckets }: { from: number; buckets: Bucket[] }) {
  const totals = OUTCOMES.map((outcome) => [outcome, buckets.reduce((sum, bucket) => sum + bucket[outcome], 0)] as const);
  return html`<div data-testid="hourly-usage">
    <${UsageChart} series=${bars(buckets, from, HOUR_MS, HOURS)} label="Last 48 hours" describeBar=${describeHour} wide=${true} />
    <div class="row muted"><span>${when(new Date(from).toISOString())}</span><span aria-hidden="true">→</span><span>now (one bar an hour, UTC; refusals in red)</span></div>
    <dl class="config" data-testid="usage-totals">
      ${totals.map(([outcome, count]) => html`<dt><code>${outcome}</code></dt><dd>${count}</dd>`)}
    </dl>
  </div>`;
}

function Allowlist({ ips }: { ips: Key["allowed_ips"] }) {
  if (!ips || ips.length === 0) return html`<p data-testid="allowlist">Any address</p>`;
  return html`<ul data-testid="allowlist">${ips.map((ip) => html`<li><code>${ip}</code></li>`)}</ul>`;
}

export function KeyPage({ session, id }: { session: Session; id: string }) {
  const [key, setKey] = useState<Key | null>(null);
  const [usage, setUsage] = useState<{ from: number; buckets: Bucket[] } | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [reload, setReload] = useState(0);

  useEffect(() => {
    let live = true;
    const from = windowStart(Date.now(), HOUR_MS, HOURS);
    const path = { path: { id } };
    Promise.all([
      session.api.GET("/v1/keys/{id}", { params: path }),
      session.api.GET("/v1/keys/{id}/usage", { params: { ...path, query: { granularity: "hour", from: instant(from) } } }),
    ]).then(([found, used]) => {
      if (!live) return;
      if (found.error || !found.data) return setError(describe(found.error));
      if (used.error || !used.data) return setError(describe(used.error));
      setError(null);
      setKey(found.data);
      setUsage({ from, buckets: used.data.buckets });
    });
    return () => {
      live = false;
    };
  }, [id, reload]);

  const state = key && status(key, Date.now());
  const canWrite = holds(session, "keys:write") && !session.me?.workspace.read_only && (state === "active" || state === "in grace");
  return html`<div>
    <p><a href="#/keys">← All keys</a></p>
    <${ErrorLine} error=${error} />
    ${key && html`<section class="card" data-key-id=${key.id}>
      <h2>Key “${key.name}”</h2>
      <dl class="config">
        <dt>Key</dt><dd><code>${key.masked}</code></dd>
        <dt>Status</dt><dd class=${`status-${state?.replace(" ", "-")}`}>${state}</dd>
        <dt>Capabilities</dt><dd>${key.capabilities.length ? key.capabilities.map((c) => html`<span class="tag">${c}</span>`) : "none"}</dd>
        <dt>Created</dt><dd>${when(key.created_at)}</dd>
        <dt>Last used</dt><dd>${when(key.last_used_at)}</dd>
        <dt>Expires</dt><dd>${key.expires_at ? when(key.expires_at) : "never"}</dd>
        <dt>Rate limit</dt><dd>${key.rate_limit ? `${key.rate_limit.limit} / ${key.rate_limit.window_seconds} s` : "none"}</dd>
      </dl>
      <div class="row"><button type="button" class="secondary" onClick=${() => setReload(reload + 1)}>Refresh</button></div>
    </section>`}
    ${key && usage && html`<section class="card">
      <h2>Usage, last 48 hours</h2>
      <${HourlyUsage} from=${usage.from} buckets=${usage.buckets} />
    </section>`}
    ${key && html`<section class="card">
      <h2>IP allowlist</h2>
      <${Allowlist} ips=${key.allowed_ips} />
    </section>
    <section class="card">
      <h2>Credits</h2>
      <p>Balance: <strong data-testid="credits">${creditsText(key.credits)}</strong>${!key.credits && html` <span class="muted">(unmetered: giving it a balance makes each use spend 1)</span>`}</p>
      ${canWrite && html`<${CreditsForm} session=${session} keyId=${key.id} onChanged=${setKey} />`}
    </section>`}
  </div>`;
}
