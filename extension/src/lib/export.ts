/** A chat as Markdown, for "Export". */
export function conversationToMarkdown(
  chat: { title: string; model?: string; messages: { role: string; content: string }[]; exportedAt?: Date },
): string {
  const when = (chat.exportedAt ?? new Date()).toISOString();
  const lines = [`# ${chat.title.replace(/\s+/g, " ").trim() || "Chat"}`, ""];
  lines.push(`_Exported from TabAgent on ${when}${chat.model ? ` · model ${chat.model}` : ""}_`, "");
  for (const message of chat.messages) {
    const who = message.role === "user" ? "You" : message.role === "assistant" ? "Assistant" : message.role;
    lines.push(`## ${who}`, "", message.content.trim(), "");
  }
  return lines.join("\n");
}

/** A file name for an exported chat. */
export function exportFileName(title: string): string {
  const slug = title.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 60);
  return `${slug || "chat"}.md`;
}
