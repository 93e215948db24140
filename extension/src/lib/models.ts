/** What the model picker shows: which models can chat, in what order, and download progress as text. */
import type { Model } from "./api.ts";

const NOT_CHAT = new Set(["embedding", "face_detection", "vision"]);

/** Chat-capable models, downloaded first, then catalog ones that can be pulled. */
export function chatModels(models: Model[]): Model[] {
  return models
    .filter((m) => !NOT_CHAT.has(m.task ?? "") && !/embed|minilm/i.test(m.id))
    .sort((a, b) => Number(b.downloaded ?? false) - Number(a.downloaded ?? false) || a.id.localeCompare(b.id));
}

/** A size as people read it: "950 kB", "4.2 MB", "386 MB", "1.2 GB". */
export function formatBytes(bytes: number): string {
  if (bytes >= 1e9) return `${(bytes / 1e9).toFixed(1)} GB`;
  if (bytes >= 1e7) return `${Math.round(bytes / 1e6)} MB`;
  if (bytes >= 1e6) return `${(bytes / 1e6).toFixed(1)} MB`;
  return `${Math.round(bytes / 1e3)} kB`;
}

/** The line under the picker while a model downloads. */
export function pullNote(step: { state: string; bytes: number; total: number }): string {
  if (step.total <= 0) return `${step.state}…`;
  const percent = Math.floor((step.bytes / step.total) * 100);
  return `${step.state} ${percent}% (${formatBytes(step.bytes)} of ${formatBytes(step.total)})`;
}
