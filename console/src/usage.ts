// Usage as small bar charts: the API's sparse buckets (only those with a use, oldest first)
// zero-filled into one bar per UTC day or hour, each bar its valid uses under its refusals.
import type { components } from "../../clients/typescript/index";
import { html } from "./ui";

export const HOUR_MS = 3_600_000;
export const DAY_MS = 86_400_000;

/** A bucket as the API answers it: its start and a count per outcome. */
export type Bucket = components["schemas"]["UsageBucket"];

export const OUTCOMES = ["valid", "rate_limited", "credits_exhausted", "insufficient_capabilities", "ip_not_allowed"] as const;

export interface Bar {
  start: number;
  valid: number;
  refused: number;
}

/** `count` buckets of `step` ms ending with the one `now` is in (UTC): the first one's start. */
export function windowStart(now: number, step: number, count: number): number {
  return Math.floor(now / step) * step - (count - 1) * step;
}

/** RFC 3339 in UTC, to the second, as the API's query parameters take it. */
export function instant(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
}

/** One bar per bucket from `from`, zero where the API sent nothing. */
export function bars(buckets: Bucket[], from: number, step: number, count: number): Bar[] {
  const filled: Bar[] = Array.from({ length: count }, (_, i) => ({ start: from + i * step, valid: 0, refused: 0 }));
  for (const bucket of buckets) {
    const index = Math.floor((Date.parse(bucket.start) - from) / step);
    const bar = filled[index];
    if (!bar) continue;
    bar.valid += bucket.valid;
    bar.refused += OUTCOMES.reduce((sum, outcome) => (outcome === "valid" ? sum : sum + bucket[outcome]), 0);
  }
  return filled;
}

export function uses(n: number): string {
  return `${n} ${n === 1 ? "use" : "uses"}`;
}

/** "Last 7 days: 12 uses", with the refusals among them when there are any. */
export function summary(label: string, series: Bar[]): string {
  const valid = series.reduce((sum, bar) => sum + bar.valid, 0);
  const refused = series.reduce((sum, bar) => sum + bar.refused, 0);
  return `${label}: ${uses(valid + refused)}${refused ? ` (${refused} refused)` : ""}`;
}

const VALID = "#2357d6";
const REFUSED = "#b3261e";
const EMPTY = "#d9dde3";

/**
 * The bars as an inline SVG (presentation attributes only: the page's CSP admits no inline
 * style). `wide`: it fills its container's width instead of a fixed small size.
 */
export function UsageChart({ series, label, describeBar, wide = false }: { series: Bar[]; label: string; describeBar: (bar: Bar) => string; wide?: boolean }) {
  const text = summary(label, series);
  const slot = 10;
  const height = wide ? 80 : 20;
  const highest = Math.max(1, ...series.map((bar) => bar.valid + bar.refused));
  const scale = (n: number) => (n === 0 ? 0 : Math.max(1, (n / highest) * (height - 1)));
  return html`<svg data-testid="usage-chart" role="img" aria-label=${text} viewBox=${`0 0 ${series.length * slot} ${height}`}
    width=${wide ? "100%" : series.length * slot} height=${height} preserveAspectRatio="none">
    <title>${text}</title>
    ${series.map((bar, i) => {
      const valid = scale(bar.valid);
      const refused = bar.refused ? scale(bar.valid + bar.refused) - valid : 0;
      const x = i * slot + 1;
      return html`<g>
        <title>${describeBar(bar)}</title>
        <rect x=${x} y=${height - 1} width=${slot - 2} height="1" fill=${EMPTY} />
        ${valid > 0 && html`<rect x=${x} y=${height - valid} width=${slot - 2} height=${valid} fill=${VALID} />`}
        ${refused > 0 && html`<rect x=${x} y=${height - valid - refused} width=${slot - 2} height=${refused} fill=${REFUSED} />`}
      </g>`;
    })}
  </svg>`;
}

/** A bar's tooltip: its day or hour (UTC) and its counts. */
export function describeDay(bar: Bar): string {
  return `${new Date(bar.start).toISOString().slice(0, 10)}: ${uses(bar.valid + bar.refused)}${bar.refused ? ` (${bar.refused} refused)` : ""}`;
}

export function describeHour(bar: Bar): string {
  return `${new Date(bar.start).toISOString().slice(0, 13).replace("T", " ")}:00 UTC: ${uses(bar.valid + bar.refused)}${bar.refused ? ` (${bar.refused} refused)` : ""}`;
}
