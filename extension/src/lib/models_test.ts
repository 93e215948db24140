import { deepEqual, equal } from "node:assert/strict";
import { chatModels, formatBytes, pullNote } from "./models.ts";

Deno.test("the picker lists chat models only, downloaded ones first", () => {
  const listed = chatModels([
    { id: "b/chat", downloaded: false },
    { id: "sentence-transformers/all-MiniLM-L6-v2", task: "embedding", downloaded: true },
    { id: "a/chat", downloaded: false },
    { id: "z/chat", downloaded: true },
    { id: "q/face", task: "face_detection" },
  ]);
  deepEqual(listed.map((m) => m.id), ["z/chat", "a/chat", "b/chat"]);
});

Deno.test("download progress reads as a percentage of readable sizes", () => {
  equal(formatBytes(950_000), "950 kB");
  equal(formatBytes(4_200_000), "4.2 MB");
  equal(formatBytes(386_000_000), "386 MB");
  equal(formatBytes(1_230_000_000), "1.2 GB");
  equal(pullNote({ state: "downloading", bytes: 524_288, total: 4_194_304 }), "downloading 12% (524 kB of 4.2 MB)");
  equal(pullNote({ state: "resolving", bytes: 0, total: 0 }), "resolving…");
});
