// The audit trail, newest first: the workspace's, or for the operator the operator-level one.
import { useEffect, useState } from "preact/hooks";
import type { components } from "../../clients/typescript/index";
import { describe, ErrorLine, html, Pager, usePages, when, type Session } from "./ui";

type Entry = components["schemas"]["AuditEntry"];

export function AuditPage({ session }: { session: Session }) {
  const [items, setItems] = useState<Entry[]>([]);
  const pages = usePages();
  const [error, setError] = useState<string | null>(null);
  const cursor = pages.cursor;
  useEffect(() => {
    session.api.GET("/v1/audit", { params: { query: { limit: 50, cursor } } }).then(({ data, error }) => {
      if (error || !data) return setError(describe(error));
      setItems(data.items);
      pages.setNext(data.next_cursor ?? null);
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
    <${Pager} pages=${pages} />
  </section>`;
}
