/**
 * Model output → safe DOM: Markdown through `marked`, then `DOMPurify` with a strict profile (no
 * script, no event handlers, no forms or frames), links opened outside the panel, and a copy
 * button on each code block. Model output must never run script.
 */
import DOMPurify from "dompurify";
import { marked } from "marked";

const PURIFY_OPTIONS = {
  USE_PROFILES: { html: true },
  FORBID_TAGS: ["style", "form", "input", "button", "textarea", "select", "iframe", "object", "embed", "svg", "math"],
  FORBID_ATTR: ["style"],
  ALLOW_DATA_ATTR: false,
};

DOMPurify.addHook("afterSanitizeAttributes", (node) => {
  if (node.tagName === "A") {
    node.setAttribute("target", "_blank");
    node.setAttribute("rel", "noopener noreferrer");
  }
  // Remote images would leak what is on screen to any host the model names; keep alt text only.
  if (node.tagName === "IMG") {
    const alt = node.getAttribute("alt") ?? "";
    node.replaceWith(document.createTextNode(alt ? `[image: ${alt}]` : "[image]"));
  }
});

/** Renders Markdown into `target`, replacing its content. */
export function renderMarkdown(target: HTMLElement, markdown: string): void {
  const html = marked.parse(markdown, { async: false, gfm: true, breaks: true }) as string;
  const fragment = DOMPurify.sanitize(html, { ...PURIFY_OPTIONS, RETURN_DOM_FRAGMENT: true });
  target.replaceChildren(fragment);
  for (const pre of target.querySelectorAll("pre")) addCopyButton(pre);
}

/** Renders plain text (user messages) with no interpretation at all. */
export function renderText(target: HTMLElement, text: string): void {
  target.replaceChildren(document.createTextNode(text));
}

function addCopyButton(pre: HTMLPreElement): void {
  const wrapper = document.createElement("div");
  wrapper.className = "code-block";
  pre.replaceWith(wrapper);
  const button = document.createElement("button");
  button.type = "button";
  button.className = "copy-code";
  button.textContent = "Copy";
  button.setAttribute("aria-label", "Copy code");
  button.addEventListener("click", async () => {
    // Without the newline Markdown ends every code block with, so a pasted line does not run at once.
    await navigator.clipboard.writeText((pre.textContent ?? "").replace(/\n+$/, ""));
    button.textContent = "Copied";
    setTimeout(() => (button.textContent = "Copy"), 1500);
  });
  wrapper.append(button, pre);
}
