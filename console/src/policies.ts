// A workspace's two key policies as the operator sees and edits them: the longest a key may
// live (`max_key_lifetime_seconds`, `null` for no limit) and what a leak report of one of its
// keys does (`leak_policy`: revoke, expire after a grace, or notify only). Durations are typed
// in days, hours, minutes or seconds; the API judges the values and its refusal is shown here.
import { useState } from "preact/hooks";
import type { components } from "../../clients/typescript/index";
import { describe, ErrorLine, html, type Session } from "./ui";

type Workspace = components["schemas"]["Workspace"];
type LeakAction = Workspace["leak_policy"]["action"];

const UNITS = [
  { name: "day", seconds: 86_400 },
  { name: "hour", seconds: 3_600 },
  { name: "minute", seconds: 60 },
  { name: "second", seconds: 1 },
];

/** A duration as typed: the amount (text, as the input holds it) and the seconds of its unit. */
interface Span {
  amount: string;
  unit: number;
}

/** `seconds` in the largest unit that holds it whole (7776000 is 90 days); 0 is left empty. */
function spanOf(seconds: number, emptyUnit: number): Span {
  if (seconds <= 0) return { amount: "", unit: emptyUnit };
  const unit = UNITS.find((u) => seconds % u.seconds === 0)?.seconds ?? 1;
  return { amount: String(seconds / unit), unit };
}

/** What was typed, in seconds, for the API to judge (and refuse): an empty or unreadable amount
 * is 0, float noise (0.1 day) is rounded off while a fraction of a second is kept, and a huge
 * amount stays a number, since `Infinity` or `NaN` would go out as JSON `null`: no limit. */
function secondsOf(span: Span): number {
  return Math.min(Math.round(Number(span.amount) * span.unit * 1000) / 1000, Number.MAX_SAFE_INTEGER) || 0;
}

/** "90 days", "1 hour", "45 seconds". */
function spell(seconds: number): string {
  const { amount, unit } = spanOf(seconds, 1);
  const name = UNITS.find((u) => u.seconds === unit)?.name ?? "second";
  return `${amount || 0} ${name}${amount === "1" ? "" : "s"}`;
}

function lifetimeText(seconds: Workspace["max_key_lifetime_seconds"]): string {
  return seconds === null ? "no limit" : `at most ${spell(seconds)}`;
}

function leakText({ action, grace_seconds }: Workspace["leak_policy"]): string {
  if (action === "expire") return `expire after ${spell(grace_seconds)}`;
  return action === "revoke" ? "revoke at once" : "notify only";
}

function Duration({ id, label, span, disabled, onChange }: { id: string; label: string; span: Span; disabled: boolean; onChange: (span: Span) => void }) {
  return html`<label for=${id}>${label}</label>
    <div class="row duration">
      <input id=${id} type="number" min="1" step="any" value=${span.amount} disabled=${disabled}
        onInput=${(e: Event) => onChange({ ...span, amount: (e.target as HTMLInputElement).value })} />
      <label class="sr" for=${`${id}-unit`}>Unit of ${label}</label>
      <select id=${`${id}-unit`} value=${span.unit} disabled=${disabled} onChange=${(e: Event) => onChange({ ...span, unit: Number((e.target as HTMLSelectElement).value) })}>
        ${UNITS.map((u) => html`<option value=${u.seconds}>${u.name}s</option>`)}
      </select>
    </div>`;
}

/** The policies of one workspace, read and changed in place; `onSaved` once the API took them. */
export function Policies({ session, workspace, onSaved }: { session: Session; workspace: Workspace; onSaved: () => void }) {
  const id = workspace.id;
  const [limited, setLimited] = useState(workspace.max_key_lifetime_seconds !== null);
  const [lifetime, setLifetime] = useState(spanOf(workspace.max_key_lifetime_seconds ?? 0, 86_400));
  const [action, setAction] = useState<LeakAction>(workspace.leak_policy.action);
  const [grace, setGrace] = useState(spanOf(workspace.leak_policy.grace_seconds, 3_600));
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const save = async (event: Event) => {
    event.preventDefault();
    setError(null);
    setBusy(true);
    const body = {
      max_key_lifetime_seconds: limited ? secondsOf(lifetime) : null,
      leak_policy: action === "expire" ? { action, grace_seconds: secondsOf(grace) } : { action },
    };
    const { error } = await session.api.PATCH("/v1/workspaces/{id}", { params: { path: { id } }, body });
    setBusy(false);
    if (error) return setError(describe(error));
    onSaved();
  };
  return html`<div data-testid="policies">
    <div>Key lifetime: <span data-testid="lifetime">${lifetimeText(workspace.max_key_lifetime_seconds)}</span></div>
    <div>On a leak: <span data-testid="leak-policy">${leakText(workspace.leak_policy)}</span></div>
    <details>
      <summary>Edit policies</summary>
      <form onSubmit=${save} noValidate>
        <label class="inline"><input id=${`limited-${id}`} type="checkbox" checked=${limited} onChange=${(e: Event) => setLimited((e.target as HTMLInputElement).checked)} />
          Limit how long a key may live</label>
        <${Duration} id=${`lifetime-${id}`} label="Longest key lifetime" span=${lifetime} disabled=${!limited} onChange=${setLifetime} />
        <label for=${`leak-action-${id}`}>On a leak report</label>
        <select id=${`leak-action-${id}`} value=${action} onChange=${(e: Event) => setAction((e.target as HTMLSelectElement).value as LeakAction)}>
          <option value="revoke">revoke the key at once</option>
          <option value="expire">expire it after a grace</option>
          <option value="notify">notify only</option>
        </select>
        <${Duration} id=${`grace-${id}`} label="Grace (up to a day)" span=${grace} disabled=${action !== "expire"} onChange=${setGrace} />
        <div class="row"><button type="submit" class="secondary" disabled=${busy}>Save policies</button></div>
        <${ErrorLine} error=${error} />
      </form>
    </details>
  </div>`;
}
