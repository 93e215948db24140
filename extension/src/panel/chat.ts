/**
 * The chat: messages (Markdown rendered and sanitized), the composer with send and stop, the
 * memory toggle, new chat and Markdown export. Each turn is stored in memory under a
 * `conversation_id` the panel creates with the first question.
 */
import { ApiError, type ChatMessage } from "../lib/api.ts";
import { h, isAltShortcut } from "../lib/dom.ts";
import { conversationToMarkdown, exportFileName } from "../lib/export.ts";
import { renderMarkdown, renderText } from "../lib/markdown.ts";
import type { PanelContext, PanelSection } from "./context.ts";

/** Marks the bench reads: send pressed, first token painted. */
export const MARK_SEND = "tabagent:send";
/** See {@link MARK_SEND}. */
export const MARK_FIRST_TOKEN = "tabagent:first-token";

function bubble(role: string, content: string): HTMLElement {
  const body = h("div", { className: "body" });
  if (role === "assistant") renderMarkdown(body, content);
  else renderText(body, content);
  const who = role === "user" ? "You" : role === "assistant" ? "Assistant" : role;
  return h("article", { className: `message ${role}`, "aria-label": `${who} said` }, body);
}

/** The chat section. */
export const chatSection: PanelSection = {
  id: "chat",
  mount(context: PanelContext) {
    let messages: ChatMessage[] = [];
    let conversationId: string | null = null;
    let title = "";
    let running: AbortController | null = null;

    const log = h("div", { id: "messages", role: "log", "aria-live": "polite", "aria-label": "Conversation" });
    const empty = h("p", { className: "empty", id: "empty" }, "Ask anything. Answers stay on this machine.");
    log.append(empty);
    context.regions.main.append(log);

    const input = h("textarea", {
      id: "prompt",
      rows: 3,
      placeholder: "Message TabAgent (Enter to send, Shift+Enter for a new line)",
      "aria-label": "Message",
      "aria-keyshortcuts": "Enter",
    }) as HTMLTextAreaElement;
    const send = h("button", { type: "submit", id: "send", className: "primary" }, "Send");
    const stop = h("button", { type: "button", id: "stop", hidden: true, "aria-keyshortcuts": "Escape" }, "Stop");
    const memory = h("input", { type: "checkbox", id: "use-memory" }) as HTMLInputElement;
    const included = h("p", { className: "included", id: "included", "aria-live": "polite" });
    const form = h(
      "form",
      { id: "composer", "aria-label": "Send a message" },
      input,
      h(
        "div",
        { className: "composer-row" },
        h("label", { className: "toggle" }, memory, " Use memory"),
        h("span", { className: "spacer" }),
        stop,
        send,
      ),
      included,
    );
    context.regions.composer.append(form);

    const newChat = h("button", {
      type: "button",
      id: "new-chat",
      title: "New chat (Alt+N)",
      "aria-keyshortcuts": "Alt+N",
    }, "New chat");
    const exportButton = h("button", { type: "button", id: "export", title: "Export as Markdown" }, "Export");
    context.regions.toolbar.append(newChat, exportButton);

    const render = () => {
      log.replaceChildren(...(messages.length ? messages.map((m) => bubble(m.role, m.content)) : [empty]));
      log.scrollTop = log.scrollHeight;
    };

    const setRunning = (controller: AbortController | null) => {
      running = controller;
      stop.hidden = controller === null;
      send.disabled = controller !== null;
    };

    const ask = async (text: string) => {
      const question = text.trim();
      if (!question || running) return;
      performance.clearMarks();
      performance.mark(MARK_SEND);
      const api = context.api;
      if (!api) return showError("Not connected to the TabAgent server.");
      if (!context.model) return showError("Pick a downloaded model first.");
      const controller = new AbortController();
      setRunning(controller);
      input.value = "";
      empty.remove();
      const userBubble = bubble("user", question);
      log.append(userBubble);
      const reply = h("article", {
        className: "message assistant streaming",
        "aria-label": "Assistant said",
        "aria-busy": "true",
      });
      const body = h("div", { className: "body" });
      reply.append(body);
      log.append(reply);
      let answer = "";
      let renaming: Promise<unknown> | null = null;
      try {
        if (!conversationId) {
          title = question.slice(0, 80);
          startDraft();
          conversationId = await draft!;
          draft = null;
          // Named after the question while the answer streams: off the path to the first token.
          renaming = api.renameConversation(conversationId, title);
        }
        const turn = { conversationId };
        const extras = (await Promise.all(context.promptContributors.map((f) => f(question, turn)))).filter((x) => x);
        included.textContent = extras.map((x) => x!.summary).join(" · ");
        const prior = messages;
        messages = [...messages, { role: "user", content: question }];
        let painted = false;
        let scheduled = false;
        for await (
          const event of api.chat({
            model: context.model,
            messages: [...extras.flatMap((x) => x!.messages), ...prior, { role: "user", content: question }],
            conversationId,
            memory: memory.checked,
            sampling: { temperature: context.settings.temperature, max_tokens: context.settings.maxTokens },
          }, controller.signal)
        ) {
          if (event.type === "delta") {
            answer += event.text;
            if (!painted) {
              painted = true;
              renderMarkdown(body, answer);
              performance.mark(MARK_FIRST_TOKEN);
            } else if (!scheduled) {
              scheduled = true;
              requestAnimationFrame(() => {
                scheduled = false;
                renderMarkdown(body, answer);
                log.scrollTop = log.scrollHeight;
              });
            }
          } else if (event.type === "extra") context.emit("chatExtra", event.chunk);
        }
        renderMarkdown(body, answer);
      } catch (error) {
        if ((error as Error).name === "AbortError") {
          renderMarkdown(body, answer);
          body.append(h("p", { className: "stopped" }, "Stopped."));
        } else {
          const message = error instanceof ApiError ? error.message : String((error as Error).message ?? error);
          body.append(h("p", { className: "error", role: "alert" }, message));
          if (error instanceof ApiError && error.status === 0) {
            context.env.connect(true).then((c) => context.setConnection(c));
          }
        }
      } finally {
        await renaming?.catch((error) => console.warn("TabAgent: could not name the conversation", error));
        reply.classList.remove("streaming");
        reply.removeAttribute("aria-busy");
        if (answer) messages = [...messages, { role: "assistant", content: answer }];
        setRunning(null);
        context.emit("conversations", undefined);
        log.scrollTop = log.scrollHeight;
        input.focus();
      }
    };

    // The conversation a new chat is stored in is created while its first question is typed, so
    // sending does not wait for it; one left unused is deleted when the chat is left.
    let draft: Promise<string> | null = null;
    const startDraft = () => {
      if (conversationId || draft || !context.api) return;
      const pending = context.api.createConversation("New chat").then((c) => c.id);
      draft = pending;
      pending.catch(() => {
        if (draft === pending) draft = null;
      });
    };
    const dropDraft = () => {
      const pending = draft;
      const api = context.api;
      draft = null;
      pending?.then((id) => api?.deleteConversation(id)).catch(() => {/* it may never have been created */});
    };
    input.addEventListener("input", () => {
      if (input.value.trim()) startDraft();
    });

    const showError = (message: string) => {
      const note = h("p", { className: "error", role: "alert" }, message);
      log.append(note);
    };

    form.addEventListener("submit", (event) => {
      event.preventDefault();
      ask(input.value);
    });
    input.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        ask(input.value);
      }
    });
    stop.addEventListener("click", () => running?.abort());
    document.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && running) running.abort();
      if (isAltShortcut(event, "KeyN")) {
        event.preventDefault();
        context.emit("conversation", { id: null, title: "", messages: [] });
      }
    });
    newChat.addEventListener("click", () => context.emit("conversation", { id: null, title: "", messages: [] }));
    exportButton.addEventListener("click", () => {
      const markdown = conversationToMarkdown({ title: title || "Chat", model: context.model, messages });
      const url = URL.createObjectURL(new Blob([markdown], { type: "text/markdown" }));
      h("a", { href: url, download: exportFileName(title || "chat") }).click();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
    });
    memory.addEventListener("change", () => context.updateSettings({ memory: memory.checked }));
    context.on("settings", (settings) => (memory.checked = settings.memory));
    memory.checked = context.settings.memory;

    context.on("conversation", (opened) => {
      running?.abort();
      dropDraft();
      conversationId = opened.id;
      title = opened.title;
      messages = opened.messages;
      included.textContent = "";
      render();
      input.focus();
    });
    context.on("compose", ({ text, send: now }) => {
      if (now) ask(text);
      else {
        input.value = text;
        input.focus();
      }
    });
  },
};
