// A key's credits: how they read ("250 / 1000 per day", "—" unmetered) and the form that adds
// to the balance or sets it.
import { useState } from "preact/hooks";
import type { components } from "../../clients/typescript/index";
import { describe, html, type Session } from "./ui";

type Key = components["schemas"]["KeyObject"];

export function creditsText(credits: Key["credits"]): string {
  if (!credits) return "—";
  return credits.refill ? `${credits.remaining} / ${credits.refill.amount} per ${credits.refill.interval}` : `${credits.remaining}`;
}

export function CreditsForm({ session, keyId, onChanged }: { session: Session; keyId: string; onChanged: (key: Key) => void }) {
  const [change, setChange] = useState<"add" | "set">("add");
  const [amount, setAmount] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (event: Event) => {
    event.preventDefault();
    setError(null);
    setBusy(true);
    const body = change === "add" ? { add: Number(amount) } : { set: Number(amount) };
    const { data, error } = await session.api.POST("/v1/keys/{id}/credits", { params: { path: { id: keyId } }, body });
    setBusy(false);
    if (error || !data) return setError(describe(error));
    setAmount("");
    onChanged(data);
  };
  return html`<form onSubmit=${submit} data-testid="credits-form">
    <label for="credits-change">Change</label>
    <select id="credits-change" value=${change} onChange=${(e: Event) => setChange((e.target as HTMLSelectElement).value as "add" | "set")}>
      <option value="add">Add to the balance</option>
      <option value="set">Set the balance to</option>
    </select>
    <label for="credits-amount">Credits</label>
    <input id="credits-amount" type="number" min="0" required value=${amount} aria-describedby=${error ? "credits-error" : undefined}
      onInput=${(e: Event) => setAmount((e.target as HTMLInputElement).value)} />
    <div class="row"><button type="submit" disabled=${busy}>${change === "add" ? "Add credits" : "Set balance"}</button></div>
    ${error && html`<p class="error" role="alert" id="credits-error">${error}</p>`}
  </form>`;
}
