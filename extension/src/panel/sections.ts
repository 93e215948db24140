/**
 * The panel's sections, in mount order. A new section is one module exporting a
 * {@link PanelSection} and one line here.
 */
import { chatSection } from "./chat.ts";
import { citationsSection } from "./citations.ts";
import type { PanelSection } from "./context.ts";
import { conversationsSection } from "./conversations.ts";
import { modelsSection } from "./models.ts";
import { pageSection } from "./page.ts";
import { settingsSection } from "./settings.ts";
import { statusSection } from "./status.ts";
import { videoSection } from "./video.ts";

/** Every section of the panel. */
export const SECTIONS: PanelSection[] = [
  statusSection,
  modelsSection,
  chatSection,
  citationsSection,
  pageSection,
  videoSection,
  conversationsSection,
  settingsSection,
];
