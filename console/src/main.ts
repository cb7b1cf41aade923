// The console: sign in with a workspace key or the admin token, then the pages that key may
// use. The credential lives in this page's memory only: a reload or "Sign out" forgets it.
import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { keywarden } from "../../clients/typescript/index";
import { AgentsPage } from "./agents";
import { AuditPage } from "./audit";
import { KeyPage } from "./key";
import { KeysPage } from "./keys";
import { LeaksPage, WorkspacesPage } from "./operator";
import { ProvidersPage } from "./providers";
import { WebhooksPage } from "./webhooks";
import { describe, ErrorLine, holds, html, type Session } from "./ui";

interface Page {
  path: string;
  title: string;
  /** The capability a key needs for the page; `null`: the operator's page. */
  needs: string | null;
  view: (props: { session: Session }) => unknown;
  /** The page of one of its items, at `#/<path>/<id>`. */
  item?: (props: { session: Session; id: string }) => unknown;
}

const PAGES: Page[] = [
  { path: "keys", title: "Keys", needs: "keys:read", view: KeysPage, item: KeyPage },
  { path: "providers", title: "Providers", needs: "providers:read", view: ProvidersPage },
  { path: "agents", title: "Agents", needs: "providers:read", view: AgentsPage },
  { path: "webhooks", title: "Webhooks", needs: "webhooks:manage", view: WebhooksPage },
  { path: "audit", title: "Audit", needs: "audit:read", view: AuditPage },
  { path: "workspaces", title: "Workspaces", needs: null, view: WorkspacesPage },
  { path: "leaks", title: "Leak report", needs: null, view: LeaksPage },
  { path: "operator-audit", title: "Audit", needs: null, view: AuditPage },
];

function SignIn({ onSignedIn }: { onSignedIn: (session: Session) => void }) {
  const [token, setToken] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    const api = keywarden("", token.trim());
    const me = await api.GET("/v1/me");
    if (me.data) {
      setBusy(false);
      return onSignedIn({ api, kind: "key", me: me.data });
    }
    // Not a workspace key: perhaps the admin token.
    const operator = await api.GET("/v1/workspaces", { params: { query: { limit: 1 } } });
    setBusy(false);
    if (operator.data) return onSignedIn({ api, kind: "operator" });
    setError(describe(me.error));
  };
  return html`<main>
    <section class="card">
      <h2>Sign in</h2>
      <p>Paste a workspace key (the owner key printed when the workspace was created) or, for the operator view, the admin token. It stays in this tab's memory only.</p>
      <form onSubmit=${submit}>
        <label for="token">Key or admin token</label>
        <input id="token" type="password" autocomplete="off" required value=${token} onInput=${(e: Event) => setToken((e.target as HTMLInputElement).value)} />
        <div class="row"><button type="submit" disabled=${busy}>${busy ? "Signing in…" : "Sign in"}</button></div>
        <${ErrorLine} error=${error} />
      </form>
    </section>
  </main>`;
}

function currentPath(): string {
  return location.hash.replace(/^#\/?/, "") || "keys";
}

function App() {
  const [session, setSession] = useState<Session | null>(null);
  const [path, setPath] = useState(currentPath());
  useEffect(() => {
    const follow = () => setPath(currentPath());
    addEventListener("hashchange", follow);
    return () => removeEventListener("hashchange", follow);
  }, []);

  if (!session) return html`<${SignIn} onSignedIn=${setSession} />`;
  const visible = PAGES.filter((page) => (session.kind === "operator" ? page.needs === null : page.needs !== null));
  const [section, ...rest] = path.split("/");
  const item = rest.length ? decodeURIComponent(rest.join("/")) : null;
  const page = visible.find((p) => p.path === section) ?? visible[0];
  const who = session.kind === "operator" ? "Operator" : `${session.me?.workspace.name} · ${session.me?.key.name}`;
  return html`<div>
    <header>
      <h1>keywarden</h1>
      <nav aria-label="Pages"><ul>
        ${visible.map((p) => html`<li><a href=${`#/${p.path}`} aria-current=${p === page ? "page" : undefined}>${p.title}</a></li>`)}
      </ul></nav>
      <div class="row">
        <span class="muted">${who}${session.me?.workspace.read_only ? " (read-only)" : ""}</span>
        <button type="button" class="secondary" onClick=${() => setSession(null)}>Sign out</button>
      </div>
    </header>
    <main>
      ${!page && html`<p>There is no page for this credential yet.</p>`}
      ${page && page.needs && !holds(session, page.needs)
        ? html`<section class="card"><p>This page needs the <code>${page.needs}</code> capability, which this key does not hold.</p></section>`
        : page && (page.item && item && page.path === section
            ? html`<${page.item} session=${session} id=${item} />`
            : html`<${page.view} session=${session} />`)}
    </main>
  </div>`;
}

const root = document.getElementById("app");
if (root) {
  root.textContent = "";
  render(html`<${App} />`, root);
}
