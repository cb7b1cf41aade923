// Agents, as Waypath routes them: each agent to metered billing or to one configured provider
// (with a model), and a resolve preview that shows the decision, never the key.
import { useState } from "preact/hooks";
import type { components } from "../../clients/typescript/index";
import { describe, ErrorLine, holds, html, when, type Session } from "./ui";

type Routing = components["schemas"]["AgentRouting"];

export function AgentsPage({ session }: { session: Session }) {
  const [agentId, setAgentId] = useState("");
  const [routing, setRouting] = useState<Routing | null>(null);
  const [mode, setMode] = useState<"metered" | "byok">("byok");
  const [provider, setProvider] = useState("");
  const [model, setModel] = useState("");
  const [preview, setPreview] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const writable = holds(session, "providers:write") && !session.me?.workspace.read_only;
  const path = { params: { path: { id: agentId } } };

  const load = async (event?: Event) => {
    event?.preventDefault();
    setError(null);
    setPreview(null);
    const { data, error } = await session.api.GET("/v1/agents/{id}/routing", path);
    if ((error as { error?: { code: string } })?.error?.code === "not_configured") return setRouting(null);
    if (error || !data) return setError(describe(error));
    setRouting(data);
    setMode(data.mode);
    setProvider(data.provider ?? "");
    setModel(data.model ?? "");
  };
  const save = async (event: Event) => {
    event.preventDefault();
    setError(null);
    const body =
      mode === "metered"
        ? { mode: "metered" as const }
        : { mode: "byok" as const, provider: provider as components["schemas"]["ProviderIdInput"], ...(model ? { model } : {}) };
    const { data, error } = await session.api.PUT("/v1/agents/{id}/routing", { ...path, body });
    if (error || !data) return setError(describe(error));
    setRouting(data);
  };
  const remove = async () => {
    const { error } = await session.api.DELETE("/v1/agents/{id}/routing", path);
    if (error) return setError(describe(error));
    setRouting(null);
  };
  const resolve = async () => {
    setError(null);
    const { data, error } = await session.api.POST("/v1/resolve", { body: { agent_id: agentId } });
    if (error || !data) return setError(describe(error));
    // The answer carries the provider key for the runtime; the preview shows only the decision.
    setPreview(data.mode === "byok" ? `byok · ${data.provider}${data.model ? ` · ${data.model}` : ""}` : `metered · ${data.reason}`);
  };

  return html`<div>
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
          <input id="agent-model" type="text" value=${model} onInput=${(e: Event) => setModel((e.target as HTMLInputElement).value)} />`}
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
