// Keys, as Le Bureau's settings tab has them: the list, create (the key shown once), revoke,
// reroll with a grace period, and verify a pasted key.
import { useEffect, useState } from "preact/hooks";
import type { components } from "../../clients/typescript/index";
import { describe, ErrorLine, holds, html, Pager, Secret, usePages, when, type Session } from "./ui";

type Key = components["schemas"]["KeyObject"];
type KeyWithSecret = components["schemas"]["KeyObjectWithSecret"];

const RESERVED = ["keys:read", "keys:write", "keys:verify", "providers:read", "providers:write", "secrets:resolve", "webhooks:manage", "audit:read"];
const PAGE = 20;

function status(key: Key, now: number): "active" | "revoked" | "expired" | "in grace" {
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

function CreateKey({ session, onCreated }: { session: Session; onCreated: (key: KeyWithSecret) => void }) {
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
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const readOnly = session.me?.workspace.read_only ?? false;

  useEffect(() => {
    session.api.GET("/v1/workspace").then(({ data, error }) => {
      if (error || !data) return setError(describe(error));
      setDefaults(data.default_capabilities);
      setChosen(data.default_capabilities);
    });
  }, []);

  const offered = [...RESERVED, ...defaults.filter((capability) => !RESERVED.includes(capability))];
  const toggle = (capability: string) =>
    setChosen(chosen.includes(capability) ? chosen.filter((c) => c !== capability) : [...chosen, capability]);

  const submit = async (event: Event) => {
    event.preventDefault();
    setError(null);
    let parsedSubject: Record<string, unknown> | undefined;
    if (subject.trim()) {
      try {
        parsedSubject = JSON.parse(subject);
      } catch {
        setError("The subject must be a JSON object, e.g. {\"user_id\": \"u_123\"}.");
        return;
      }
    }
    const extra = custom.split(/[\s,]+/).filter(Boolean);
    const body: components["schemas"]["KeyCreateRequest"] = { name, capabilities: [...new Set([...chosen, ...extra])] };
    if (expiresIn) body.expires_in = Number(expiresIn);
    if (limit) body.rate_limit = { limit: Number(limit), window_seconds: Number(windowSeconds) };
    if (parsedSubject) body.subject = parsedSubject;
    setBusy(true);
    const { data, error } = await session.api.POST("/v1/keys", { body });
    setBusy(false);
    if (error || !data) return setError(describe(error));
    setName("");
    setCustom("");
    setChosen(defaults);
    onCreated(data);
  };

  return html`<section class="card">
    <h2>Create a key</h2>
    ${readOnly && html`<p class="notice">This workspace is read-only: keys cannot be created until the operator makes it writable.</p>`}
    <form onSubmit=${submit}>
      <label for="key-name">Name</label>
      <input id="key-name" type="text" required maxlength="200" value=${name} onInput=${(e: Event) => setName((e.target as HTMLInputElement).value)} />
      <fieldset data-testid="capabilities">
        <legend>Capabilities</legend>
        <p class="muted">The workspace's defaults are ticked. Tick only what this key needs.</p>
        ${offered.map(
          (capability) =>
            html`<label class="inline"><input type="checkbox" value=${capability} checked=${chosen.includes(capability)} onChange=${() => toggle(capability)} /> <code>${capability}</code>${defaults.includes(capability) ? html` <span class="muted">(default)</span>` : ""}</label>`,
        )}
        <label for="key-custom">Your product's capabilities (comma or space separated, e.g. <code>desktop:chat</code>)</label>
        <input id="key-custom" type="text" value=${custom} onInput=${(e: Event) => setCustom((e.target as HTMLInputElement).value)} />
      </fieldset>
      <label for="key-expires">Expires in (seconds, empty for never)</label>
      <input id="key-expires" type="number" min="1" value=${expiresIn} onInput=${(e: Event) => setExpiresIn((e.target as HTMLInputElement).value)} />
      <label for="key-limit">Rate limit (requests per window, empty for none)</label>
      <input id="key-limit" type="number" min="1" max="100000" value=${limit} onInput=${(e: Event) => setLimit((e.target as HTMLInputElement).value)} />
      <label for="key-window">Rate-limit window (seconds)</label>
      <input id="key-window" type="number" min="1" max="3600" value=${windowSeconds} onInput=${(e: Event) => setWindowSeconds((e.target as HTMLInputElement).value)} />
      <label for="key-subject">Subject (JSON, optional)</label>
      <textarea id="key-subject" value=${subject} onInput=${(e: Event) => setSubject((e.target as HTMLTextAreaElement).value)}></textarea>
      <div class="row"><button type="submit" disabled=${busy || readOnly}>${busy ? "Creating…" : "Create key"}</button></div>
      <${ErrorLine} error=${error} />
    </form>
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

export function KeysPage({ session }: { session: Session }) {
  const [keys, setKeys] = useState<Key[]>([]);
  const pages = usePages();
  const [showRevoked, setShowRevoked] = useState(false);
  const [created, setCreated] = useState<KeyWithSecret | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [reload, setReload] = useState(0);
  const cursor = pages.cursor;
  const canWrite = holds(session, "keys:write") && !session.me?.workspace.read_only;

  useEffect(() => {
    session.api
      .GET("/v1/keys", { params: { query: { limit: PAGE, cursor, include_revoked: showRevoked ? "true" : "false" } } })
      .then(({ data, error }) => {
        if (error || !data) return setError(describe(error));
        setError(null);
        setKeys(data.items);
        pages.setNext(data.next_cursor ?? null);
      });
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
        <thead><tr><th>Name</th><th>Key</th><th>Capabilities</th><th>Created</th><th>Last used</th><th>Expires</th><th>Rate limit</th><th>Status</th><th><span class="muted">Actions</span></th></tr></thead>
        <tbody>
          ${keys.map((key) => {
            const state = status(key, now);
            return html`<tr data-key-id=${key.id}>
              <td class="key-name">${key.name}</td>
              <td><code>${key.masked}</code></td>
              <td>${key.capabilities.map((c) => html`<span class="tag">${c}</span>`)}</td>
              <td>${when(key.created_at)}</td>
              <td>${when(key.last_used_at)}</td>
              <td>${key.expires_at ? when(key.expires_at) : "never"}</td>
              <td>${key.rate_limit ? `${key.rate_limit.limit} / ${key.rate_limit.window_seconds} s` : "none"}</td>
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
