/**
 * Injected on demand into the active tab ("Ask about this page"): the page's readable text via
 * Mozilla's Readability, run on a clone so the page itself is untouched.
 */
import { Readability } from "@mozilla/readability";

function extract(): { title: string; url: string; text: string } {
  const clone = document.cloneNode(true) as Document;
  const article = new Readability(clone).parse();
  const text = (article?.textContent ?? document.body?.innerText ?? "").replace(/[ \t]+/g, " ")
    .replace(/\n\s*\n+/g, "\n\n").trim();
  return { title: article?.title || document.title, url: location.href, text };
}

(globalThis as unknown as { __tabagentPage: unknown }).__tabagentPage = extract();
