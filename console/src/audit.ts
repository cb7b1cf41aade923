// The audit trail, newest first: the workspace's, or for the operator the operator-level one.
import { useEffect, useState } from "preact/hooks";
import type { components } from "../../clients/typescript/index";
import { describe, ErrorLine, html, when, type Session } from "./ui";

type Entry = components["schemas"]["AuditEntry"];

export function AuditPage({ session }: { session: Session }) {
  const [items, setItems] = useState<Entry[]>([]);
  const [cursors, setCursors] = useState<(string | undefined)[]>([undefined]);
  const [next, setNext] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const cursor = cursors[cursors.length - 1];
  useEffect(() => {
    session.api.GET("/v1/audit", { params: { query: { limit: 50, cursor } } }).then(({ data, error }) => {
      if (error || !data) return setError(describe(error));
      setItems(data.items);
      setNext(data.next_cursor ?? null);
    });
  }, [cursor]);
  return html`<section class="card">
    <h2>${session.kind === "operator" ? "Operator audit trail" : "Audit trail"}</h2>
    <${ErrorLine} error=${error} />
    <div class="table-wrap"><table>
      <thead><tr><th>When</th><th>Action</th><th>Target</th><th>By key</th><th>IP</th><th>Detail</th></tr></thead>
      <tbody>
        ${items.map(
          (entry) => html`<tr>
            <td>${when(entry.at)}</td>
            <td class="audit-action"><code>${entry.action}</code></td>
            <td><code>${entry.target ?? "—"}</code></td>
            <td><code>${entry.actor_key_id ?? "—"}</code></td>
            <td>${entry.ip ?? "—"}</td>
            <td><code>${JSON.stringify(entry.detail)}</code></td>
          </tr>`,
        )}
      </tbody>
    </table></div>
    <div class="row">
      <button type="button" class="secondary" disabled=${cursors.length === 1} onClick=${() => setCursors(cursors.slice(0, -1))}>Newer</button>
      <button type="button" class="secondary" disabled=${!next} onClick=${() => next && setCursors([...cursors, next])}>Older</button>
    </div>
  </section>`;
}
