// What every page shares: the html tag, the session, and how an API error is shown.
import { h } from "preact";
import { useState } from "preact/hooks";
import htm from "htm";
import type { KeywardenClient, ApiError, components } from "../../clients/typescript/index";

// htm renders every interpolated value as text: no page ever sets HTML from data.
export const html = htm.bind(h);

export type Me = components["schemas"]["Me"];

export interface Session {
  api: KeywardenClient;
  /** `key`: a workspace key (what `/v1/me` says it may do); `operator`: the admin token. */
  kind: "key" | "operator";
  me?: Me;
}

/** Whether the signed-in key holds `capability` (`*` and `ns:*` cover what they name). */
export function holds(session: Session, capability: string): boolean {
  const held = session.me?.key.capabilities ?? [];
  const [namespace] = capability.split(":");
  return held.includes("*") || held.includes(capability) || held.includes(`${namespace}:*`);
}

/** The envelope's message, with its code, for any failed call. */
export function describe(error: unknown): string {
  const envelope = (error as { error?: ApiError } | undefined)?.error;
  if (envelope?.message) return `${envelope.message} (${envelope.code})`;
  return error instanceof Error ? error.message : "The request failed.";
}

/** The request field the envelope names (`allowed_ips`, `credits.refill.amount`, …), if any. */
export function fieldOf(error: unknown): string | null {
  return (error as { error?: ApiError } | undefined)?.error?.field ?? null;
}

export function when(at: string | null | undefined): string {
  if (!at) return "—";
  return new Date(at).toLocaleString();
}

export function ErrorLine({ error }: { error: string | null }) {
  return error ? html`<p class="error" role="alert">${error}</p>` : null;
}

/** Cursor paging, newest first: the cursors of the pages seen so far, and the next one. */
export function usePages() {
  const [cursors, setCursors] = useState<(string | undefined)[]>([undefined]);
  const [next, setNext] = useState<string | null>(null);
  return {
    cursor: cursors[cursors.length - 1],
    first: cursors.length === 1,
    next,
    setNext,
    older: () => next && setCursors([...cursors, next]),
    newer: () => setCursors(cursors.slice(0, -1)),
    reset: () => setCursors([undefined]),
  };
}

export function Pager({ pages }: { pages: ReturnType<typeof usePages> }) {
  return html`<div class="row">
    <button type="button" class="secondary" disabled=${pages.first} onClick=${pages.newer}>Newer</button>
    <button type="button" class="secondary" disabled=${!pages.next} onClick=${pages.older}>Older</button>
  </div>`;
}

/** A secret shown this once, with a button that copies it. */
export function Secret({ value, testid, copyLabel = "Copy" }: { value: string; testid: string; copyLabel?: string }) {
  const [copied, setCopied] = useState(false);
  const copy = async () => {
    await navigator.clipboard.writeText(value);
    setCopied(true);
  };
  return html`<div>
    <code class="secret" data-testid=${testid}>${value}</code>
    <div class="row"><button type="button" onClick=${copy}>${copied ? "Copied" : copyLabel}</button></div>
  </div>`;
}
