// Keys, as Le Bureau's settings tab has them: the list (each row with its last 7 days of use
// and its credits), create (the key shown once), revoke, reroll with a grace period, and
// verify a pasted key.
import { useEffect, useState } from "preact/hooks";
import type { components } from "../../clients/typescript/index";
import { creditsText } from "./credits";
import { CreateKey } from "./create-key";
import { describe, ErrorLine, holds, html, Pager, Secret, usePages, when, type Session } from "./ui";
import { bars, DAY_MS, describeDay, instant, UsageChart, windowStart, type Bar } from "./usage";

type Key = components["schemas"]["KeyObject"];
type KeyWithSecret = components["schemas"]["KeyObjectWithSecret"];

const PAGE = 20;

export function status(key: Key, now: number): "active" | "revoked" | "expired" | "in grace" {
  const revoked = key.revoked_at ? Date.parse(key.revoked_at) : null;
  if (revoked !== null && revoked <= now) return "revoked";
  if (key.expires_at && Date.parse(key.expires_at) <= now) return "expired";
  return revoked !== null ? "in grace" : "active";
}

/** The plaintext of a new key, shown this once. */
function ShownOnce({ created, onDone }: { created: KeyWithSecret; onDone: () => void }) {
  return html`<section class="card notice" aria-live="polite">
    <h2>Your new key “${created.name}”</h2>
    <p><strong>Copy it now: it cannot be shown again.</strong> keywarden stores only its hash.</p>
    <${Secret} value=${created.key} testid="new-key" copyLabel="Copy key" />
    <div class="row"><button type="button" class="secondary" onClick=${onDone}>I have saved it</button></div>
  </section>`;
}

function VerifyKey({ session }: { session: Session }) {
  const [presented, setPresented] = useState("");
  const [verdict, setVerdict] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const submit = async (event: Event) => {
    event.preventDefault();
    setError(null);
    const { data, error } = await session.api.POST("/v1/keys/verify", { body: { key: presented } });
    if (error || !data) return setError(describe(error));
    setVerdict(data.valid ? `Valid: ${data.key_id ?? ""}` : `Not valid: ${data.code}`);
  };
  return html`<section class="card">
    <h2>Verify a key</h2>
    <form onSubmit=${submit}>
      <label for="verify-key">Key</label>
      <input id="verify-key" type="password" autocomplete="off" value=${presented} onInput=${(e: Event) => setPresented((e.target as HTMLInputElement).value)} />
      <div class="row"><button type="submit">Verify</button></div>
      ${verdict && html`<p role="status">${verdict}</p>`}
      <${ErrorLine} error=${error} />
    </form>
  </section>`;
}

/**
 * The last 7 UTC days of each listed key, by key id, from GET /v1/keys/usage with the list's
 * cursor: one call, as that pages the same keys in the same order (revoked ones too, so
 * without them a page asks for more, and in the rare page it still falls short, for the next).
 */
async function weekOf(session: Session, keys: Key[], cursor: string | undefined, withRevoked: boolean): Promise<Map<string, Bar[]>> {
  const from = windowStart(Date.now(), DAY_MS, 7);
  const found = new Map<string, Bar[]>();
  const listed = new Set(keys.map((key) => key.id));
  let after = cursor;
  for (let call = 0; call < 5 && keys.some((key) => !found.has(key.id)); call++) {
    const { data, error } = await session.api.GET("/v1/keys/usage", {
      params: { query: { granularity: "day", from: instant(from), limit: withRevoked ? PAGE : 100, cursor: after } },
    });
    if (error || !data) throw new Error(describe(error));
    for (const item of data.items) if (listed.has(item.key_id)) found.set(item.key_id, bars(item.buckets, from, DAY_MS, 7));
    if (!data.next_cursor) break;
    after = data.next_cursor;
  }
  return found;
}

export function KeysPage({ session }: { session: Session }) {
  const [keys, setKeys] = useState<Key[]>([]);
  const [week, setWeek] = useState<Map<string, Bar[]>>(new Map());
  const pages = usePages();
  const [showRevoked, setShowRevoked] = useState(false);
  const [created, setCreated] = useState<KeyWithSecret | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [reload, setReload] = useState(0);
  const cursor = pages.cursor;
  const canWrite = holds(session, "keys:write") && !session.me?.workspace.read_only;

  useEffect(() => {
    let live = true;
    session.api
      .GET("/v1/keys", { params: { query: { limit: PAGE, cursor, include_revoked: showRevoked ? "true" : "false" } } })
      .then(async ({ data, error }) => {
        if (!live) return;
        if (error || !data) return setError(describe(error));
        setError(null);
        setKeys(data.items);
        pages.setNext(data.next_cursor ?? null);
        try {
          const used = await weekOf(session, data.items, cursor, showRevoked);
          if (live) setWeek(used);
        } catch (failed) {
          if (live) setError((failed as Error).message);
        }
      });
    return () => {
      live = false;
    };
  }, [cursor, showRevoked, reload]);

  const refresh = () => setReload(reload + 1);
  const revoke = async (key: Key) => {
    if (!confirm(`Revoke “${key.name}”? Requests with it fail from the next one on.`)) return;
    const { error } = await session.api.DELETE("/v1/keys/{id}", { params: { path: { id: key.id } } });
    if (error) return setError(describe(error));
    refresh();
  };
  const reroll = async (key: Key) => {
    const grace = prompt(`Reroll “${key.name}”: for how many seconds should the old key keep working?`, "3600");
    if (grace === null) return;
    const { data, error } = await session.api.POST("/v1/keys/{id}/reroll", {
      params: { path: { id: key.id } },
      body: { grace_seconds: Number(grace) },
    });
    if (error || !data) return setError(describe(error));
    setCreated(data);
    refresh();
  };
  const now = Date.now();

  return html`<div>
    ${created && html`<${ShownOnce} created=${created} onDone=${() => setCreated(null)} />`}
    <section class="card">
      <h2>API keys</h2>
      <label class="inline"><input type="checkbox" checked=${showRevoked} onChange=${() => { setShowRevoked(!showRevoked); pages.reset(); }} /> Show revoked keys</label>
      <${ErrorLine} error=${error} />
      <div class="table-wrap"><table>
        <thead><tr><th>Name</th><th>Key</th><th>Capabilities</th><th>Last used</th><th>Expires</th><th>Rate limit</th><th>Last 7 days</th><th>Credits</th><th>Status</th><th><span class="muted">Actions</span></th></tr></thead>
        <tbody>
          ${keys.map((key) => {
            const state = status(key, now);
            return html`<tr data-key-id=${key.id}>
              <td class="key-name"><a href=${`#/keys/${key.id}`} title="Its usage by the hour, allowlist and credits">${key.name}</a></td>
              <td><code>${key.masked}</code></td>
              <td>${key.capabilities.map((c) => html`<span class="tag">${c}</span>`)}</td>
              <td>${when(key.last_used_at)}</td>
              <td>${key.expires_at ? when(key.expires_at) : "never"}</td>
              <td>${key.rate_limit ? `${key.rate_limit.limit} / ${key.rate_limit.window_seconds} s` : "none"}</td>
              <td>${week.has(key.id)
                ? html`<${UsageChart} series=${week.get(key.id)} label="Last 7 days" describeBar=${describeDay} />`
                : html`<span class="muted">…</span>`}</td>
              <td data-testid="credits">${creditsText(key.credits)}</td>
              <td class=${`status-${state.replace(" ", "-")}`}>${state}</td>
              <td>${canWrite && state !== "revoked" && state !== "expired" &&
                html`<div class="row">
                  <button type="button" class="secondary" aria-label=${`Reroll ${key.name}`} onClick=${() => reroll(key)}>Reroll</button>
                  <button type="button" class="danger" aria-label=${`Revoke ${key.name}`} onClick=${() => revoke(key)}>Revoke</button>
                </div>`}</td>
            </tr>`;
          })}
        </tbody>
      </table></div>
      ${keys.length === 0 && !error && html`<p class="muted">No keys on this page.</p>`}
      <${Pager} pages=${pages} />
    </section>
    ${holds(session, "keys:write") && html`<${CreateKey} session=${session} onCreated=${(key: KeyWithSecret) => { setCreated(key); pages.reset(); refresh(); }} />`}
    ${holds(session, "keys:verify") && html`<${VerifyKey} session=${session} />`}
  </div>`;
}
