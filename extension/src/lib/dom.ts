/** A small element builder: `h("button", { type: "button", onclick }, "Send")`. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: Record<string, unknown> = {},
  ...children: (Node | string | null | undefined | false)[]
): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      element.addEventListener(key.slice(2), value as EventListener);
    } else if (key === "className") element.className = String(value);
    else if (key === "dataset") Object.assign(element.dataset, value);
    else if (key in element && typeof value !== "string") {
      (element as unknown as Record<string, unknown>)[key] = value;
    } else element.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child);
  }
  return element;
}

/** A command line with a copy button, as the panel shows fixes. */
export function commandBlock(command: string): HTMLElement {
  const code = h("code", {}, command);
  const button = h("button", {
    type: "button",
    className: "copy-command",
    "aria-label": `Copy the command ${command}`,
    onclick: async () => {
      await navigator.clipboard.writeText(command);
      button.textContent = "Copied";
      setTimeout(() => (button.textContent = "Copy"), 1500);
    },
  }, "Copy");
  return h("div", { className: "command" }, code, button);
}

/** Replaces `parent`'s children, skipping absent ones (replaceChildren would print "null"). */
export function setChildren(parent: Element, ...children: (Node | string | null | undefined | false)[]): void {
  parent.replaceChildren(...children.filter((c): c is Node | string => c !== null && c !== undefined && c !== false));
}

/**
 * Whether `event` is Alt (Option on a Mac) plus the key at `code` and no other modifier. The
 * physical key, because Option+N types "˜" on a Mac keyboard.
 */
export function isAltShortcut(event: KeyboardEvent, code: string): boolean {
  return event.altKey && !event.ctrlKey && !event.metaKey && !event.shiftKey && event.code === code;
}
