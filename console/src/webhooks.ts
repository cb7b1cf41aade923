// Webhooks both ways: the inbound signing secret (shown once, with the README's worked signing
// example filled in for this workspace) and the notification endpoint (its secret shown once).
import { useEffect, useState } from "preact/hooks";
import type { components } from "../../clients/typescript/index";
import { describe, ErrorLine, html, Secret, when, type Session } from "./ui";

type Endpoint = components["schemas"]["NotificationEndpoint"];

function signingExample(origin: string, workspaceId: string, secret: string): string {
  return [
    `SECRET='${secret}'; WS=${workspaceId}`,
    "ID=rot_$(date +%s%N); TS=$(date +%s)",
    `BODY='{"type":"provider_key.rotated","data":{"provider":"openai","api_key":"sk-proj-NEW..."}}'`,
    "KEY_HEX=$(printf %s \"${SECRET#whsec_}\" | base64 -d | od -An -tx1 -v | tr -d ' \\n')",
    "SIG=$(printf '%s.%s.%s' \"$ID\" \"$TS\" \"$BODY\" | openssl dgst -sha256 -mac HMAC -macopt \"hexkey:$KEY_HEX\" -binary | base64)",
    `curl -s -X POST "${origin}/v1/hooks/$WS" -H "Content-Type: application/json" \\`,
    '  -H "webhook-id: $ID" -H "webhook-timestamp: $TS" -H "webhook-signature: v1,$SIG" -d "$BODY"',
  ].join("\n");
}

export function WebhooksPage({ session }: { session: Session }) {
  const [grace, setGrace] = useState("3600");
  const [secret, setSecret] = useState<string | null>(null);
  const [endpoint, setEndpoint] = useState<Endpoint | null>(null);
  const [endpointSecret, setEndpointSecret] = useState<string | null>(null);
  const [url, setUrl] = useState("");
  const [error, setError] = useState<string | null>(null);
  const readOnly = session.me?.workspace.read_only ?? false;
  const workspaceId = session.me?.workspace.id ?? "";

  useEffect(() => {
    session.api.GET("/v1/webhooks/endpoint").then(({ data }) => setEndpoint(data ?? null));
  }, []);

  const rotate = async (event: Event) => {
    event.preventDefault();
    setError(null);
    const { data, error } = await session.api.POST("/v1/webhooks/secret", { body: { grace_seconds: Number(grace) } });
    if (error || !data) return setError(describe(error));
    setSecret(data.secret);
  };
  const saveEndpoint = async (event: Event) => {
    event.preventDefault();
    setError(null);
    const { data, error } = await session.api.PUT("/v1/webhooks/endpoint", { body: { url } });
    if (error || !data) return setError(describe(error));
    setEndpoint({ url: data.url, created_at: data.created_at });
    setEndpointSecret(data.secret);
  };
  const removeEndpoint = async () => {
    if (!confirm("Remove the notification endpoint? keywarden stops telling it about revocations and rotations.")) return;
    const { error } = await session.api.DELETE("/v1/webhooks/endpoint");
    if (error) return setError(describe(error));
    setEndpoint(null);
    setEndpointSecret(null);
  };

  return html`<div>
    ${readOnly && html`<p class="notice">This workspace is read-only: its secrets and endpoint cannot change until the operator makes it writable.</p>`}
    <section class="card">
      <h2>Inbound signing secret</h2>
      <p>Your secret manager, CI or scanner signs events to <code>POST /v1/hooks/${workspaceId}</code> with this secret (Standard Webhooks).</p>
      <form onSubmit=${rotate}>
        <label for="grace">Seconds the previous secret keeps verifying</label>
        <input id="grace" type="number" min="0" max="604800" value=${grace} onInput=${(e: Event) => setGrace((e.target as HTMLInputElement).value)} />
        <div class="row"><button type="submit" disabled=${readOnly}>Rotate the signing secret</button></div>
      </form>
      ${secret &&
      html`<div class="notice" aria-live="polite">
        <p><strong>Copy it now: it cannot be shown again.</strong></p>
        <${Secret} value=${secret} testid="webhook-secret" copyLabel="Copy secret" />
        <p>Signing an event by hand, for this workspace:</p>
        <pre class="secret" data-testid="signing-example">${signingExample(location.origin, workspaceId, secret)}</pre>
      </div>`}
    </section>
    <section class="card">
      <h2>Notification endpoint</h2>
      <p data-testid="endpoint">${endpoint ? html`Deliveries go to <code>${endpoint.url}</code> (since ${when(endpoint.created_at)}).` : "No endpoint: keywarden notifies no one."}</p>
      <form onSubmit=${saveEndpoint}>
        <label for="endpoint-url">Endpoint URL (https)</label>
        <input id="endpoint-url" type="url" required value=${url} onInput=${(e: Event) => setUrl((e.target as HTMLInputElement).value)} />
        <div class="row">
          <button type="submit" disabled=${readOnly}>${endpoint ? "Replace the endpoint" : "Set the endpoint"}</button>
          <button type="button" class="danger" disabled=${readOnly || !endpoint} onClick=${removeEndpoint}>Remove</button>
        </div>
      </form>
      ${endpointSecret &&
      html`<div class="notice" aria-live="polite">
        <p><strong>Deliveries are signed with this secret, shown once:</strong></p>
        <${Secret} value=${endpointSecret} testid="endpoint-secret" copyLabel="Copy endpoint secret" />
      </div>`}
    </section>
    <${ErrorLine} error=${error} />
  </div>`;
}
