/**
 * The memories an answer used: when a chat asks for memory, the server's last stream chunk carries
 * `tabagent.citations` (message ids and snippets, a page's URL and title); this section lists them
 * under the answer, as "Sources".
 */
import { z } from "zod";
import { h } from "../lib/dom.ts";
import type { PanelContext, PanelSection } from "./context.ts";

/**
 * One cited memory, as the server sends it (its `Citation` in rag_chat.ts). The panel checks what
 * arrives at its boundary like every other server answer, and drops an entry it cannot show.
 */
const CitationSchema = z.object({
  id: z.string(),
  kind: z.string(),
  conversation_id: z.string().nullable(),
  snippet: z.string(),
  url: z.string().optional(),
  title: z.string().nullable().optional(),
});
type Citation = z.infer<typeof CitationSchema>;

function citationsOf(chunk: Record<string, unknown>): Citation[] {
  const list = (chunk.tabagent as { citations?: unknown } | undefined)?.citations;
  if (!Array.isArray(list)) return [];
  return list.flatMap((entry) => {
    const parsed = CitationSchema.safeParse(entry);
    return parsed.success ? [parsed.data] : [];
  });
}

const isWebUrl = (url: string | undefined): url is string => !!url && /^https?:\/\//i.test(url);

function pageLink(c: Citation & { url: string }): HTMLElement {
  return h(
    "a",
    { href: c.url, target: "_blank", rel: "noopener noreferrer", title: c.url, className: "source cited-page" },
    c.title || c.url,
  );
}

/**
 * What is shown under an answer (empty citations: nothing): the pages it drew on, named and
 * linked in plain sight, then every source with its snippet behind "Sources".
 */
export function renderCitations(citations: Citation[]): HTMLElement | null {
  if (!citations.length) return null;
  const items = citations.map((c) => {
    const source = isWebUrl(c.url)
      ? pageLink({ ...c, url: c.url })
      : h("span", { className: "source" }, c.kind === "fact" ? "A fact" : "An earlier message");
    // text only: snippets are user content and are never parsed as HTML
    return h("li", { "data-id": c.id }, source, ": ", h("q", {}, c.snippet));
  });
  const pages = new Map<string, Citation & { url: string }>();
  for (const c of citations) if (isWebUrl(c.url) && !pages.has(c.url)) pages.set(c.url, { ...c, url: c.url });
  const cited = [...pages.values()].flatMap((c, i) => i ? [", ", pageLink(c)] : [pageLink(c)]);
  return h(
    "div",
    { className: "citations" },
    pages.size
      ? h("p", { className: "cited-pages" }, pages.size === 1 ? "From the page " : "From the pages ", ...cited)
      : null,
    h(
      "details",
      {},
      h("summary", {}, `Sources (${citations.length})`),
      h("ol", {}, ...items),
    ),
  );
}

/** The citations section: it has no region of its own, it annotates the chat's last answer. */
export const citationsSection: PanelSection = {
  id: "citations",
  mount(context: PanelContext) {
    context.on("chatExtra", (chunk) => {
      const list = renderCitations(citationsOf(chunk));
      const answers = document.querySelectorAll("#messages article.message.assistant");
      const last = answers[answers.length - 1];
      if (list && last) last.append(list);
    });
  },
};
