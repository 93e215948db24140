/**
 * "Ask about this page": the active tab's readable text goes with the next questions. The whole
 * page when it fits the model's context (counted with the model's own tokenizer, through
 * `/v1/tokenize`); otherwise the passages most relevant to each question, as many as fit. The
 * panel shows what was included.
 */
import type { ChatMessage } from "../lib/api.ts";
import { type Chunk, rankChunks, selectChunks, splitIntoChunks } from "../lib/chunks.ts";
import { h, setChildren } from "../lib/dom.ts";
import type { PageText, PanelContext, PanelSection, PromptContribution } from "./context.ts";

/** Tokens kept free for the chat template, the question and the system wording. */
const RESERVED_TOKENS = 256;
/** Target passage size when the page must be cut (tokens). */
const CHUNK_TOKENS = 200;

function pageMessage(page: PageText, body: string, partial: boolean): ChatMessage {
  return {
    role: "system",
    content: `Answer using this web page${partial ? " (the passages most relevant to the question)" : ""}.\n` +
      `Title: ${page.title}\nURL: ${page.url}\n\n${body}`,
  };
}

const number = (n: number) => n.toLocaleString("en");

/** The page section. */
export const pageSection: PanelSection = {
  id: "page",
  mount(context: PanelContext) {
    const env = context.env;
    if (!env.pageText) return; // the web app has no tabs to read
    const button = h("button", { type: "button", id: "ask-page", "aria-pressed": "false" }, "Ask about this page");
    const status = h("p", { className: "page-status", id: "page-status", "aria-live": "polite" });
    const kept = h("p", { className: "page-kept", id: "page-kept", "aria-live": "polite", hidden: true });
    const details = h("details", { id: "page-included", hidden: true }, h("summary", {}, "What was included"));
    const included = h("div", { className: "page-included-text" });
    details.append(included);
    context.regions.context.append(h("div", { className: "page" }, button, status), kept, details);
    let active = false;
    /** The page last kept (chat, URL, text), so asking again about it in the same chat sends it once. */
    let lastKept: string | null = null;
    const forget = () => {
      lastKept = null;
      kept.hidden = true;
      kept.textContent = "";
      delete kept.dataset.documentId;
    };

    // Only pages the user brought in are kept (never browsing at large), each as a document of the
    // chat it was asked about; the server keeps the same URL and text once per chat.
    const keep = (page: PageText, conversationId: string) => {
      const api = context.api;
      if (!api) return;
      if (!/^https?:/i.test(page.url)) {
        kept.hidden = false;
        kept.textContent = "Not kept in memory: only web pages (http and https) are.";
        return;
      }
      const key = `${conversationId}\n${page.url}\n${page.text}`;
      if (lastKept === key) return;
      lastKept = key;
      api.keepPage({ conversationId, url: page.url, title: page.title, text: page.text }).then(
        (document) => {
          if (lastKept !== key) return; // the chat or the page changed meanwhile
          kept.hidden = false;
          kept.dataset.documentId = document.id;
          const passages = `${number(document.chunks)} passage${document.chunks === 1 ? "" : "s"}`;
          kept.textContent = `Kept “${document.title || document.url}” in this chat's memory (${passages}).`;
        },
        (error) => {
          if (lastKept !== key) return;
          lastKept = null;
          kept.hidden = false;
          delete kept.dataset.documentId;
          kept.textContent = `Could not keep this page in memory: ${(error as Error).message}`;
        },
      );
    };

    const setActive = (on: boolean) => {
      active = on;
      button.setAttribute("aria-pressed", String(on));
      button.textContent = on ? "Stop using this page" : "Ask about this page";
      if (!on) {
        status.textContent = "";
        details.hidden = true;
        forget();
      }
    };

    button.addEventListener("click", async () => {
      if (active) return setActive(false);
      try {
        const page = await env.pageText!();
        if (!page.text) throw new Error("This page has no readable text");
        setActive(true);
        status.textContent = `Using “${page.title || page.url}” (${number(page.text.length)} characters).`;
      } catch (error) {
        status.textContent = `Cannot read this page: ${(error as Error).message}`;
      }
    });

    // Another chat: what was kept belongs to the one left.
    context.on("conversation", forget);

    context.promptContributors.push(async (question, turn): Promise<PromptContribution | null> => {
      if (!active || !context.api || !context.model) return null;
      const page = await env.pageText!();
      keep(page, turn.conversationId);
      const api = context.api;
      const whole = pageMessage(page, page.text, false);
      const counted = await api.tokenize(context.model, [whole.content, question]);
      const [wholeTokens, questionTokens] = counted.counts;
      const contextSize = counted.context_size;
      const budget = contextSize - context.settings.maxTokens - questionTokens - RESERVED_TOKENS;
      if (wholeTokens <= budget) {
        setChildren(included, h("p", {}, `The whole page: ${number(wholeTokens)} tokens.`));
        details.hidden = false;
        return {
          messages: [whole],
          summary: `Included the whole page (${number(wholeTokens)} tokens)`,
        };
      }
      const charsPerToken = page.text.length / Math.max(1, wholeTokens);
      const chunks = splitIntoChunks(page.text, Math.max(200, Math.floor(charsPerToken * CHUNK_TOKENS)));
      const { counts } = await api.tokenize(context.model, chunks.map((c) => c.text));
      const header = pageMessage(page, "", true);
      const headerTokens = (await api.tokenize(context.model, [header.content])).counts[0];
      const chosen: Chunk[] = selectChunks(chunks, rankChunks(chunks, question), counts, budget - headerTokens);
      const used = chosen.reduce((n, c) => n + counts[c.index], 0);
      setChildren(
        included,
        h("p", {}, `${chosen.length} of ${chunks.length} passages, ${number(used)} of ${number(wholeTokens)} tokens:`),
        ...chosen.map((c) => h("blockquote", { dataset: { passage: String(c.index) } }, c.text)),
      );
      details.hidden = false;
      return {
        messages: [pageMessage(page, chosen.map((c) => c.text).join("\n\n[…]\n\n"), true)],
        summary: `The page is too long for this model (${
          number(wholeTokens)
        } tokens): included ${chosen.length} of ${chunks.length} passages chosen for your question`,
      };
    });
  },
};
