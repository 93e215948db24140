import assert from "node:assert/strict";
import { conversationToMarkdown, exportFileName } from "./export.ts";

Deno.test("a chat exports as Markdown with a heading per turn", () => {
  const md = conversationToMarkdown({
    title: "Capital\nof France",
    model: "m/x",
    messages: [{ role: "user", content: "Capital?" }, { role: "assistant", content: "Paris.\n" }],
    exportedAt: new Date("2026-01-02T03:04:05Z"),
  });
  assert.equal(
    md,
    "# Capital of France\n\n_Exported from TabAgent on 2026-01-02T03:04:05.000Z · model m/x_\n\n" +
      "## You\n\nCapital?\n\n## Assistant\n\nParis.\n",
  );
  assert.equal(exportFileName("What is *this*?"), "what-is-this.md");
  assert.equal(exportFileName("???"), "chat.md");
});
