/**
 * Injected on demand into the active tab ("Ask about this page"): the page's readable text via
 * Mozilla's Readability, run on a clone so the page itself is untouched.
 */
import { Readability } from "@mozilla/readability";

/** Elements that end a paragraph or a line when the page is read as text. */
const BLOCKS = "p,div,section,article,header,footer,aside,h1,h2,h3,h4,h5,h6,ul,ol,dl,table,pre,blockquote,figure";
const LINES = "li,dt,dd,tr,figcaption,br";

/**
 * The text of Readability's article HTML with its paragraphs kept: `textContent` alone runs
 * `<p>One.</p><p>Two.</p>` together as "One.Two.", which the model and the passage split both read
 * worse. Parsed by DOMParser, so nothing in it runs or loads.
 */
function readableText(html: string): string {
  const body = new DOMParser().parseFromString(html, "text/html").body;
  for (const element of body.querySelectorAll(BLOCKS)) element.after("\n\n");
  for (const element of body.querySelectorAll(LINES)) element.after("\n");
  return body.textContent ?? "";
}

function extract(): { title: string; url: string; text: string } {
  const clone = document.cloneNode(true) as Document;
  const article = new Readability(clone).parse();
  const raw = article?.content ? readableText(article.content) : document.body?.innerText ?? "";
  const text = raw.replace(/[ \t]+/g, " ").replace(/ *\n */g, "\n").replace(/\n{3,}/g, "\n\n").trim();
  return { title: article?.title || document.title, url: location.href, text };
}

(globalThis as unknown as { __tabagentPage: unknown }).__tabagentPage = extract();
