/** Conversations from memory: list, search, open, rename, delete. */
import { contentText, type Conversation } from "../lib/api.ts";
import { h, isAltShortcut } from "../lib/dom.ts";
import type { PanelContext, PanelSection } from "./context.ts";

/** The conversations section (a drawer opened from the toolbar). */
export const conversationsSection: PanelSection = {
  id: "conversations",
  mount(context: PanelContext) {
    const toggle = h("button", {
      type: "button",
      id: "history-toggle",
      "aria-expanded": "false",
      "aria-controls": "history",
      title: "Conversations (Alt+H)",
      "aria-keyshortcuts": "Alt+H",
    }, "History");
    context.regions.toolbar.append(toggle);
    const search = h("input", {
      type: "search",
      id: "history-search",
      placeholder: "Search conversations",
      "aria-label": "Search conversations",
    }) as HTMLInputElement;
    const list = h("ul", { id: "history-list", className: "history-list", "aria-label": "Conversations" });
    const panel = h(
      "section",
      { id: "history", className: "drawer", hidden: true, "aria-label": "Conversations" },
      h("h2", {}, "Conversations"),
      search,
      list,
    );
    context.regions.drawer.append(panel);

    const open = async (conversation: { id: string; title: string | null }) => {
      if (!context.api) return;
      const stored = await context.api.messages(conversation.id);
      context.emit("conversation", {
        id: conversation.id,
        title: conversation.title ?? "",
        messages: stored.filter((m) => m.role === "user" || m.role === "assistant").map((m) => ({
          role: m.role as "user" | "assistant",
          content: contentText(m.content),
        })),
      });
      show(false);
    };

    const row = (conversation: Conversation) => {
      const name = conversation.title || "Untitled chat";
      const openButton = h(
        "button",
        {
          type: "button",
          className: "history-open",
          onclick: () => open(conversation),
        },
        name,
        h("span", { className: "meta" }, ` · ${conversation.message_count} messages`),
      );
      const rename = h("button", {
        type: "button",
        className: "small",
        "aria-label": `Rename ${name}`,
        onclick: async () => {
          const next = prompt("New name", conversation.title ?? "");
          if (next && context.api) {
            await context.api.renameConversation(conversation.id, next);
            await refresh();
          }
        },
      }, "Rename");
      const remove = h("button", {
        type: "button",
        className: "small danger",
        "aria-label": `Delete ${name}`,
        onclick: async () => {
          if (context.api && confirm(`Delete "${name}"?`)) {
            await context.api.deleteConversation(conversation.id);
            await refresh();
          }
        },
      }, "Delete");
      return h("li", { dataset: { id: conversation.id } }, openButton, rename, remove);
    };

    const refresh = async () => {
      if (!context.api || panel.hidden) return;
      const query = search.value.trim();
      try {
        if (!query) {
          const conversations = await context.api.conversations();
          list.replaceChildren(
            ...(conversations.length
              ? conversations.map(row)
              : [h("li", { className: "empty" }, "No conversations yet.")]),
          );
          return;
        }
        const hits = await context.api.search(query);
        const seen = new Set<string>();
        list.replaceChildren(
          ...hits.filter((hit) => !seen.has(hit.conversation_id) && seen.add(hit.conversation_id)).map((hit) =>
            h(
              "li",
              {},
              h("button", {
                type: "button",
                className: "history-open",
                onclick: () => open({ id: hit.conversation_id, title: null }),
              }, hit.snippet.replaceAll("**", "")),
            )
          ),
        );
        if (!hits.length) list.replaceChildren(h("li", { className: "empty" }, "Nothing found."));
      } catch (error) {
        list.replaceChildren(h("li", { className: "error" }, (error as Error).message));
      }
    };

    const show = (visible: boolean) => {
      panel.hidden = !visible;
      toggle.setAttribute("aria-expanded", String(visible));
      if (visible) {
        refresh();
        search.focus();
      } else if (panel.contains(document.activeElement)) toggle.focus(); // focus must not vanish with the drawer
    };
    toggle.addEventListener("click", () => show(Boolean(panel.hidden)));
    let timer: ReturnType<typeof setTimeout> | undefined;
    search.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(refresh, 200);
    });
    document.addEventListener("keydown", (event) => {
      if (isAltShortcut(event, "KeyH")) {
        event.preventDefault();
        show(Boolean(panel.hidden));
      }
      if (event.key === "Escape" && !panel.hidden) show(false);
    });
    context.on("conversations", () => refresh());
    context.on("connection", () => refresh());
  },
};
