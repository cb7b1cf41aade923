// The operator's view (admin token): workspaces listed, created (the owner key shown once),
// renamed, made read-only or writable, their default capabilities, metered fallback, key
// lifetime and leak policies edited (the two policies in `./policies`); and a leak report.
import { useEffect, useState } from "preact/hooks";
import type { components } from "../../clients/typescript/index";
import { Policies } from "./policies";
import { describe, ErrorLine, html, Pager, Secret, usePages, when, type Session } from "./ui";

type Workspace = components["schemas"]["Workspace"];
type Created = components["schemas"]["WorkspaceCreated"];

const capabilityList = (text: string) => text.split(/[\s,]+/).filter(Boolean);

function WorkspaceRow({ session, workspace, onChange }: { session: Session; workspace: Workspace; onChange: (error: string | null) => void }) {
  const [name, setName] = useState(workspace.name);
  const [defaults, setDefaults] = useState(workspace.default_capabilities.join(", "));
  const update = async (body: components["schemas"]["WorkspaceUpdateRequest"]) => {
    const { error } = await session.api.PATCH("/v1/workspaces/{id}", { params: { path: { id: workspace.id } }, body });
    onChange(error ? describe(error) : null);
  };
  return html`<tr data-workspace=${workspace.id}>
    <td><label class="sr" for=${`name-${workspace.id}`}>Name of ${workspace.id}</label>
      <input id=${`name-${workspace.id}`} type="text" value=${name} onInput=${(e: Event) => setName((e.target as HTMLInputElement).value)} /></td>
    <td><code>${workspace.id}</code></td>
    <td><label class="sr" for=${`defaults-${workspace.id}`}>Default capabilities of ${workspace.id}</label>
      <input id=${`defaults-${workspace.id}`} type="text" value=${defaults} onInput=${(e: Event) => setDefaults((e.target as HTMLInputElement).value)} /></td>
    <td>${when(workspace.created_at)}</td>
    <td>${workspace.read_only ? "read-only" : "writable"}</td>
    <td><label class="sr" for=${`fallback-${workspace.id}`}>Metered fallback of ${workspace.id}</label>
      <select id=${`fallback-${workspace.id}`} value=${workspace.metered_fallback}
        onChange=${(e: Event) => update({ metered_fallback: (e.target as HTMLSelectElement).value as "allow" | "deny" })}>
        <option value="allow">allow</option>
        <option value="deny">deny (409)</option>
      </select></td>
    <td><${Policies} session=${session} workspace=${workspace} onSaved=${() => onChange(null)} /></td>
    <td><div class="row">
      <button type="button" class="secondary" onClick=${() => update({ name, default_capabilities: capabilityList(defaults) })}>Save</button>
      <button type="button" class="secondary" onClick=${() => update({ read_only: !workspace.read_only })}>${workspace.read_only ? "Make writable" : "Make read-only"}</button>
    </div></td>
  </tr>`;
}

export function WorkspacesPage({ session }: { session: Session }) {
  const [items, setItems] = useState<Workspace[]>([]);
  const pages = usePages();
  const [name, setName] = useState("");
  const [defaults, setDefaults] = useState("");
  const [created, setCreated] = useState<Created | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [reload, setReload] = useState(0);
  // Rows are keyed by the read of the list they show: after a change they remount once the list
  // read again arrives, so their inputs start from what the API now holds, not from before.
  const [loaded, setLoaded] = useState(0);
  const cursor = pages.cursor;
  useEffect(() => {
    session.api.GET("/v1/workspaces", { params: { query: { limit: 20, cursor } } }).then(({ data, error }) => {
      if (error || !data) return setError(describe(error));
      setItems(data.items);
      setLoaded((count) => count + 1);
      pages.setNext(data.next_cursor ?? null);
    });
  }, [cursor, reload]);
  const create = async (event: Event) => {
    event.preventDefault();
    setError(null);
    const { data, error } = await session.api.POST("/v1/workspaces", { body: { name, default_capabilities: capabilityList(defaults) } });
    if (error || !data) return setError(describe(error));
    setCreated(data);
    setName("");
    pages.reset();
    setReload(reload + 1);
  };
  const changed = (problem: string | null) => {
    setError(problem);
    setReload(reload + 1);
  };
  return html`<div>
    ${created &&
    html`<section class="card notice" aria-live="polite">
      <h2>Owner key of “${created.workspace.name}”</h2>
      <p><strong>Copy it now: it cannot be shown again.</strong> Hand it to the workspace's owner.</p>
      <${Secret} value=${created.key.key} testid="owner-key" copyLabel="Copy owner key" />
      <div class="row"><button type="button" class="secondary" onClick=${() => setCreated(null)}>I have handed it over</button></div>
    </section>`}
    <section class="card">
      <h2>Workspaces</h2>
      <${ErrorLine} error=${error} />
      <div class="table-wrap"><table>
        <thead><tr><th>Name</th><th>Id</th><th>Default capabilities</th><th>Created</th><th>State</th><th>Metered fallback</th><th>Policies</th><th><span class="muted">Actions</span></th></tr></thead>
        <tbody>${items.map((workspace) => html`<${WorkspaceRow} key=${`${workspace.id}-${loaded}`} session=${session} workspace=${workspace} onChange=${changed} />`)}</tbody>
      </table></div>
      <${Pager} pages=${pages} />
    </section>
    <section class="card">
      <h2>Create a workspace</h2>
      <form onSubmit=${create}>
        <label for="workspace-name">Name</label>
        <input id="workspace-name" type="text" required value=${name} onInput=${(e: Event) => setName((e.target as HTMLInputElement).value)} />
        <label for="workspace-defaults">Default capabilities of new keys (comma or space separated)</label>
        <input id="workspace-defaults" type="text" value=${defaults} onInput=${(e: Event) => setDefaults((e.target as HTMLInputElement).value)} />
        <div class="row"><button type="submit">Create workspace</button></div>
      </form>
    </section>
  </div>`;
}

export function LeaksPage({ session }: { session: Session }) {
  const [tokens, setTokens] = useState("");
  const [url, setUrl] = useState("");
  const [labels, setLabels] = useState<components["schemas"]["LeakLabel"][] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const report = async (event: Event) => {
    event.preventDefault();
    setError(null);
    const body = tokens.split(/\s+/).filter(Boolean).map((token) => ({ token, ...(url ? { url } : {}) }));
    const { data, error } = await session.api.POST("/v1/leaks", { body });
    if (error || !data) return setError(describe(error));
    setLabels(data);
    setTokens("");
  };
  return html`<section class="card">
    <h2>Report leaked tokens</h2>
    <p>Every reported token that is a live key is revoked at once, audited and notified.</p>
    <form onSubmit=${report}>
      <label for="leak-tokens">Tokens (one per line)</label>
      <textarea id="leak-tokens" required value=${tokens} onInput=${(e: Event) => setTokens((e.target as HTMLTextAreaElement).value)}></textarea>
      <label for="leak-url">Where they were found (optional)</label>
      <input id="leak-url" type="url" value=${url} onInput=${(e: Event) => setUrl((e.target as HTMLInputElement).value)} />
      <div class="row"><button type="submit" class="danger">Report and revoke</button></div>
    </form>
    ${labels &&
    html`<ul data-testid="leak-labels">${labels.map((l) => html`<li><code>${l.token_hash.slice(0, 12)}…</code> ${l.label === "true_positive" ? "revoked (true positive)" : "not a live key (false positive)"}</li>`)}</ul>`}
    <${ErrorLine} error=${error} />
  </section>`;
}
