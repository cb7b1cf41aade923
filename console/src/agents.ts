// Agents, as Waypath routes them: each agent to metered billing or to one configured provider
// (with a model), and a resolve preview that shows the decision, never the key.
import { useEffect, useState } from "preact/hooks";
import type { components } from "../../clients/typescript/index";
import { describe, ErrorLine, holds, html, Pager, usePages, when, type Session } from "./ui";

type Routing = components["schemas"]["AgentRouting"];

function describeRouting(routing: Routing): string {
  return `${routing.mode}${routing.provider ? ` · ${routing.provider}` : ""}${routing.model ? ` · ${routing.model}` : ""}`;
}

/** Every routed agent, most recently changed first; choosing one opens it in the editor. */
function RoutedAgents({ session, version, onChoose }: { session: Session; version: number; onChoose: (agentId: string) => void }) {
  const [items, setItems] = useState<Routing[]>([]);
  const pages = usePages();
  const [error, setError] = useState<string | null>(null);
  const cursor = pages.cursor;
  useEffect(() => {
    session.api.GET("/v1/agents", { params: { query: { limit: 20, cursor } } }).then(({ data, error }) => {
      if (error || !data) return setError(describe(error));
      setError(null);
      setItems(data.items);
      pages.setNext(data.next_cursor ?? null);
    });
  }, [cursor, version]);
  return html`<section class="card">
    <h2>Routed agents</h2>
    <${ErrorLine} error=${error} />
    ${items.length === 0 && !error
      ? html`<p>No agent is routed yet: every resolve uses the workspace default.</p>`
      : html`<div class="table-wrap"><table data-testid="agents">
          <thead><tr><th>Agent</th><th>Routing</th><th>Changed</th><th><span class="visually-hidden">Open</span></th></tr></thead>
          <tbody>
            ${items.map(
              (routing) => html`<tr>
                <td><code>${routing.agent_id}</code></td>
                <td>${describeRouting(routing)}</td>
                <td>${when(routing.updated_at)}</td>
                <td><button type="button" class="secondary" aria-label=${`Open ${routing.agent_id}`} onClick=${() => onChoose(routing.agent_id)}>Open</button></td>
              </tr>`,
            )}
          </tbody>
        </table></div>`}
    <${Pager} pages=${pages} />
  </section>`;
}

export function AgentsPage({ session }: { session: Session }) {
  const [agentId, setAgentId] = useState("");
  const [routing, setRouting] = useState<Routing | null>(null);
  const [mode, setMode] = useState<"metered" | "byok">("byok");
  const [provider, setProvider] = useState("");
  const [model, setModel] = useState("");
  const [fallback, setFallback] = useState<"" | "allow" | "deny">("");
  const [preview, setPreview] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [version, setVersion] = useState(0);
  const writable = holds(session, "providers:write") && !session.me?.workspace.read_only;
  const path = { params: { path: { id: agentId } } };

  const load = async (event?: Event, id = agentId) => {
    event?.preventDefault();
    setError(null);
    setPreview(null);
    const { data, error } = await session.api.GET("/v1/agents/{id}/routing", { params: { path: { id } } });
    if ((error as { error?: { code: string } })?.error?.code === "not_configured") return setRouting(null);
    if (error || !data) return setError(describe(error));
    setRouting(data);
    setMode(data.mode);
    setProvider(data.provider ?? "");
    setModel(data.model ?? "");
    setFallback(data.metered_fallback ?? "");
  };
  const save = async (event: Event) => {
    event.preventDefault();
    setError(null);
    const body =
      mode === "metered"
        ? { mode: "metered" as const }
        : {
            mode: "byok" as const,
            provider: provider as components["schemas"]["ProviderIdInput"],
            ...(model ? { model } : {}),
            ...(fallback ? { metered_fallback: fallback } : {}),
          };
    const { data, error } = await session.api.PUT("/v1/agents/{id}/routing", { ...path, body });
    if (error || !data) return setError(describe(error));
    setRouting(data);
    setVersion(version + 1);
  };
  const remove = async () => {
    const { error } = await session.api.DELETE("/v1/agents/{id}/routing", path);
    if (error) return setError(describe(error));
    setRouting(null);
    setVersion(version + 1);
  };
  const choose = (id: string) => {
    setAgentId(id);
    load(undefined, id);
  };
  const resolve = async () => {
    setError(null);
    const { data, error } = await session.api.POST("/v1/resolve", { body: { agent_id: agentId } });
    if (error || !data) return setError(describe(error));
    // The answer carries the provider key for the runtime; the preview shows only the decision.
    setPreview(data.mode === "byok" ? `byok · ${data.provider}${data.model ? ` · ${data.model}` : ""}` : `metered · ${data.reason}`);
  };

  return html`<div>
    <${RoutedAgents} session=${session} version=${version} onChoose=${choose} />
    <section class="card">
      <h2>Agent routing</h2>
      <form onSubmit=${load}>
        <label for="agent-id">Agent id</label>
        <input id="agent-id" type="text" required pattern="[A-Za-z0-9._:-]{1,128}" value=${agentId} onInput=${(e: Event) => setAgentId((e.target as HTMLInputElement).value)} />
        <div class="row"><button type="submit" class="secondary">Load</button></div>
      </form>
      <p data-testid="routing">${routing ? `Routed ${routing.mode}${routing.provider ? ` to ${routing.provider}` : ""}${routing.model ? ` (${routing.model})` : ""}, since ${when(routing.updated_at)}` : "Not routed: resolves use the workspace default."}</p>
      ${writable &&
      html`<form onSubmit=${save}>
        <fieldset><legend>Mode</legend>
          <label class="inline"><input type="radio" name="mode" checked=${mode === "metered"} onChange=${() => setMode("metered")} /> Metered</label>
          <label class="inline"><input type="radio" name="mode" checked=${mode === "byok"} onChange=${() => setMode("byok")} /> BYOK</label>
        </fieldset>
        ${mode === "byok" &&
        html`<label for="agent-provider">Provider id</label>
          <input id="agent-provider" type="text" placeholder="openai" value=${provider} onInput=${(e: Event) => setProvider((e.target as HTMLInputElement).value)} />
          <label for="agent-model">Model (optional)</label>
          <input id="agent-model" type="text" value=${model} onInput=${(e: Event) => setModel((e.target as HTMLInputElement).value)} />
          <label for="agent-fallback">When its key cannot be used</label>
          <select id="agent-fallback" value=${fallback} onChange=${(e: Event) => setFallback((e.target as HTMLSelectElement).value as "" | "allow" | "deny")}>
            <option value="">Follow the workspace</option>
            <option value="allow">Fall back to metered billing</option>
            <option value="deny">Refuse (409 byok_unavailable)</option>
          </select>`}
        <div class="row">
          <button type="submit" disabled=${!agentId}>Set routing</button>
          <button type="button" class="danger" disabled=${!routing} onClick=${remove}>Remove routing</button>
        </div>
      </form>`}
      ${holds(session, "secrets:resolve") &&
      html`<div class="row"><button type="button" class="secondary" disabled=${!agentId} onClick=${resolve}>Preview resolve</button></div>`}
      ${preview && html`<p role="status" data-testid="preview">Resolve: ${preview}</p>`}
      <${ErrorLine} error=${error} />
    </section>
  </div>`;
}
