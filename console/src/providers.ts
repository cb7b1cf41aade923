// Providers, as Eigent's settings have them: a card per catalog provider with its own fields.
// Save validates the key live (up to 10 s, so the card shows progress and the page stays
// usable) and shows the contract's message beside the field it concerns. A key the provider
// calls restricted can be saved unverified on purpose; the models it was offered fill the
// model fields' suggestions, and its funds show where the provider tells them.
import { useEffect, useState } from "preact/hooks";
import type { components } from "../../clients/typescript/index";
import { describe, ErrorLine, holds, html, when, type Session } from "./ui";

type Entry = components["schemas"]["CatalogEntry"];
type Config = components["schemas"]["ProviderConfig"];
type Envelope = { error?: { code: string; message: string; field?: string; detected?: string; provider_reason?: string } };

/** Refusals that say the key works but could not be proven: it may be saved unverified. */
const PROVABLE_LATER = ["key_restricted", "region_unsupported"];

function funds(config: Config): string {
  if (!config.funds) return "—";
  const { remaining, currency } = config.funds;
  return `${remaining.toLocaleString()} ${currency ?? "credits"} (checked ${when(config.funds.checked_at)})`;
}

/** The field an error names, else the key: a refusal from the provider is about the key. */
function fieldOf(error: unknown): string {
  return (error as Envelope)?.error?.field ?? "api_key";
}

function message(error: unknown): string {
  const envelope = (error as Envelope)?.error;
  if (envelope?.code === "wrong_provider" && envelope.detected) return `${envelope.message} (looks like ${envelope.detected})`;
  if (envelope && PROVABLE_LATER.includes(envelope.code)) {
    return `${describe(error)} The provider said ${envelope.provider_reason}. Tick "Save even if it cannot be verified" to keep it anyway.`;
  }
  return describe(error);
}

/** The models the stored key was offered, for the model fields' suggestions. */
function useOfferedModels(session: Session, id: Entry["id"], config?: Config): string[] {
  const [models, setModels] = useState<string[]>([]);
  useEffect(() => {
    if (!config) return setModels([]);
    session.api.GET("/v1/providers/{id}/models", { params: { path: { id } } }).then(({ data }) => setModels(data?.models ?? []));
  }, [config?.version, config?.validated_at]);
  return models;
}

function Card({ session, entry, config, onChange }: { session: Session; entry: Entry; config?: Config; onChange: () => void }) {
  const settings = entry.fields.filter((f) => f.name.startsWith("config."));
  const [values, setValues] = useState<Record<string, string>>({});
  const [makeDefault, setMakeDefault] = useState(false);
  const [allowUnverified, setAllowUnverified] = useState(false);
  const offered = useOfferedModels(session, entry.id, config);
  const [busy, setBusy] = useState<string | null>(null);
  const [error, setError] = useState<{ field: string; text: string } | null>(null);
  const [note, setNote] = useState<string | null>(null);
  const writable = holds(session, "providers:write") && !session.me?.workspace.read_only;
  const id = entry.id;
  const value = (name: string) => values[name] ?? "";
  const set = (name: string) => (e: Event) => setValues({ ...values, [name]: (e.target as HTMLInputElement).value });

  const save = async (event: Event) => {
    event.preventDefault();
    setError(null);
    setNote(null);
    const config: Record<string, string> = {};
    for (const field of settings) if (value(field.name)) config[field.name.slice("config.".length)] = value(field.name);
    const body: components["schemas"]["ProviderConfigureRequest"] = { api_key: value("api_key") };
    if (value("api_host")) body.api_host = value("api_host");
    if (value("model")) body.model = value("model");
    if (value("fallback_model")) body.fallback_model = value("fallback_model");
    if (settings.length) body.config = config;
    if (makeDefault) body.default = true;
    if (allowUnverified) body.allow_unverified = true;
    setBusy("Validating the key with the provider…");
    const { error } = await session.api.PUT("/v1/providers/{id}", { params: { path: { id } }, body });
    setBusy(null);
    if (error) return setError({ field: fieldOf(error), text: message(error) });
    setValues({});
    setMakeDefault(false);
    setAllowUnverified(false);
    setNote(allowUnverified ? "Saved. Keys the provider could not verify are checked again daily." : "Saved: the provider accepted the key.");
    onChange();
  };
  const revalidate = async () => {
    setBusy("Re-validating…");
    const { data, error } = await session.api.POST("/v1/providers/{id}/validate", { params: { path: { id } } });
    setBusy(null);
    if (error || !data) return setError({ field: "api_key", text: describe(error) });
    setNote(data.error ? `Still ${data.status}: ${data.error.message}` : `Checked: ${data.status}.`);
    onChange();
  };
  const remove = async () => {
    if (!confirm(`Remove the ${entry.name} key? Resolves fall back to the workspace default or metered billing.`)) return;
    const { error } = await session.api.DELETE("/v1/providers/{id}", { params: { path: { id } } });
    if (error) return setError({ field: "api_key", text: describe(error) });
    onChange();
  };
  const beside = (field: string) => (error && error.field === field ? html`<p class="error" role="alert">${error.text}</p>` : null);
  const input = (name: string, label: string, placeholder?: string | null, type = "text", list?: string) =>
    html`<label for=${`${id}-${name}`}>${label}</label>
      <input id=${`${id}-${name}`} type=${type} autocomplete="off" placeholder=${placeholder ?? ""} value=${value(name)} onInput=${set(name)} disabled=${!writable} list=${list} />
      ${beside(name)}`;
  const modelsList = offered.length ? `${id}-offered-models` : undefined;

  return html`<section class="card" data-provider=${id} aria-busy=${busy ? "true" : "false"}>
    <h2>${entry.name} ${config?.default ? html`<span class="tag">default</span>` : null}</h2>
    <p class="muted">Key format: ${entry.key_format}</p>
    ${config &&
    html`<dl class="config">
      <dt>Status</dt><dd class=${`status-${config.status}`} data-testid="status">${config.status}${config.provider_reason ? html` <span class="muted">(${config.provider_reason})</span>` : null}</dd>
      <dt>Funds</dt><dd data-testid="funds">${funds(config)}</dd>
      <dt>Key</dt><dd><code>${config.key_hint}</code></dd>
      <dt>Model</dt><dd>${config.model ?? "—"}</dd>
      <dt>Fallback model</dt><dd>${config.fallback_model ?? "—"}</dd>
      <dt>Host</dt><dd><code>${config.api_host}</code></dd>
      <dt>Last validated</dt><dd>${when(config.validated_at)}</dd>
    </dl>
    <div class="row">
      <button type="button" class="secondary" onClick=${revalidate} disabled=${!!busy}>Re-validate</button>
      ${writable && html`<button type="button" class="danger" onClick=${remove} disabled=${!!busy}>Remove</button>`}
    </div>`}
    ${writable
      ? html`<form onSubmit=${save}>
          ${input("api_key", config ? "New API key" : "API key", entry.key_format, "password")}
          ${input("api_host", "API host", entry.default_host)}
          ${input("model", "Model (optional)", null, "text", modelsList)}
          ${input("fallback_model", "Fallback model (optional)", null, "text", modelsList)}
          ${modelsList && html`<datalist id=${modelsList} data-testid="offered-models">${offered.map((m) => html`<option value=${m} />`)}</datalist>`}
          ${settings.map((field) => input(field.name, `${field.description ?? field.name}${field.required ? "" : " (optional)"}`, field.default))}
          <label class="inline"><input type="checkbox" checked=${makeDefault} onChange=${() => setMakeDefault(!makeDefault)} /> Set as the workspace default</label>
          <label class="inline"><input type="checkbox" checked=${allowUnverified} onChange=${() => setAllowUnverified(!allowUnverified)} /> Save even if it cannot be verified</label>
          <div class="row"><button type="submit" disabled=${!!busy}>Save</button></div>
        </form>`
      : html`<p class="muted">${session.me?.workspace.read_only ? "This workspace is read-only." : "Saving a key needs providers:write."}</p>`}
    ${busy && html`<p role="status">${busy}</p>`}
    ${note && html`<p class="ok" role="status">${note}</p>`}
    ${error && !["api_key", "api_host", "model", "fallback_model", ...settings.map((f) => f.name)].includes(error.field) && html`<p class="error" role="alert">${error.text}</p>`}
  </section>`;
}

export function ProvidersPage({ session }: { session: Session }) {
  const [catalog, setCatalog] = useState<Entry[]>([]);
  const [configs, setConfigs] = useState<Config[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [reload, setReload] = useState(0);
  useEffect(() => {
    session.api.GET("/v1/providers/catalog").then(({ data, error }) => (data ? setCatalog(data.providers) : setError(describe(error))));
  }, []);
  useEffect(() => {
    session.api.GET("/v1/providers").then(({ data, error }) => (data ? setConfigs(data.items) : setError(describe(error))));
  }, [reload]);
  return html`<div>
    <${ErrorLine} error=${error} />
    <div class="cards">${catalog.map(
      (entry) => html`<${Card} key=${entry.id} session=${session} entry=${entry} config=${configs.find((c) => c.provider === entry.id)} onChange=${() => setReload(reload + 1)} />`,
    )}</div>
  </div>`;
}
