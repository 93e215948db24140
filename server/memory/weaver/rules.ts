/**
 * The rule-based extractor: patterns for what people say about themselves and others in a chat
 * ("my name is Ada", "I work at Initech in Berlin", "I moved to Paris", "Bob is my brother",
 * "Grace works at Navy", "my email is …"), capitalised names, e-mail addresses, URLs and dates.
 * Precise rather than complete: what it finds is usually right, and the model path does the rest.
 */
import type { EntityType, Extraction } from "./schema.ts";
import { MAX_EXTRACTED_ITEMS, MAX_EXTRACTED_LENGTH } from "./schema.ts";

/** A capitalised name: words that start upper-case, joined by spaces and a few particles. */
const WORD = String.raw`\p{Lu}[\p{L}\p{M}\p{N}'’&-]*`;
const NAME = String.raw`${WORD}(?:\s+(?:(?:of|de|del|da|di|van|von|der|den|la|le|du|and|&)\s+)?${WORD})*`;
const EMAIL = String.raw`[\w.+-]+@[\w-]+(?:\.[\w-]+)+`;
const URL_RE = String.raw`https?:\/\/[^\s<>"')]+`;
const MONTHS =
  "January|February|March|April|May|June|July|August|September|October|November|December|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec";
const DATE = String
  .raw`\d{4}-\d{2}-\d{2}|\d{1,2}(?:st|nd|rd|th)?\s+(?:${MONTHS})\.?,?\s+\d{4}|(?:${MONTHS})\.?\s+\d{1,2}(?:st|nd|rd|th)?,?\s+\d{4}`;
/** "I" and "my" at the start of a sentence or inside one. */
const I = String.raw`(?:^|[\s,;:(])(?:I|i)`;
const MY = String.raw`(?:^|[\s,;:(])(?:My|my)`;

/** Family and other people someone has: "my sister Eve", "Eve is my sister". */
const KIN: Record<string, string> = {
  wife: "has_spouse",
  husband: "has_spouse",
  spouse: "has_spouse",
  partner: "has_partner",
  girlfriend: "has_partner",
  boyfriend: "has_partner",
  boss: "has_boss",
  manager: "has_manager",
  brother: "has_sibling",
  sister: "has_sibling",
  mother: "has_parent",
  mom: "has_parent",
  mum: "has_parent",
  father: "has_parent",
  dad: "has_parent",
  son: "has_child",
  daughter: "has_child",
  friend: "has_friend",
  colleague: "has_colleague",
  coworker: "has_colleague",
  cat: "has_pet",
  dog: "has_pet",
};
const KIN_WORDS = Object.keys(KIN).join("|");

/** Capitalised words that are not names on their own. */
const NOT_NAMES = new Set(
  [
    "I",
    "I'm",
    "I’m",
    "I've",
    "I'd",
    "I'll",
    "OK",
    "Okay",
    "Yes",
    "No",
    "Hi",
    "Hello",
    "Hey",
    "Thanks",
    "Please",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
    "Today",
    "Tomorrow",
    "Yesterday",
    "AI",
    "Mr",
    "Mrs",
    "Ms",
    "Dr",
    "Prof",
    ...MONTHS.split("|"),
  ],
);

type Pattern = {
  re: RegExp;
  /** The triples a match yields; `I` is the speaker. */
  emit: (m: RegExpExecArray, out: Builder) => void;
};

/** Collects an extraction without duplicates. */
class Builder {
  entities = new Map<string, { name: string; type: EntityType }>();
  relations = new Map<string, { subject: string; predicate: string; object: string }>();
  facts = new Map<string, { subject: string; predicate: string; object: string }>();
  /** Spans already explained by a pattern (capitalised names there are not "mentions"). */
  claimed = new Set<string>();

  entity(name: string, type: EntityType): string {
    const clean = cleanName(name);
    const key = clean.toLowerCase();
    const known = this.entities.get(key);
    // a specific type found by a pattern beats "thing" from a bare mention
    if (!known || (known.type === "thing" && type !== "thing")) this.entities.set(key, { name: clean, type });
    this.claimed.add(clean);
    return clean;
  }

  relation(subject: string, predicate: string, object: string): void {
    this.relations.set(`${subject}\u0000${predicate}\u0000${object}`, { subject, predicate, object });
  }

  fact(subject: string, predicate: string, object: string): void {
    this.facts.set(`${subject}\u0000${predicate}\u0000${object}`, { subject, predicate, object });
  }

  build(): Extraction {
    const cap = <T>(items: Iterable<T>) => [...items].slice(0, MAX_EXTRACTED_ITEMS);
    return {
      entities: cap(this.entities.values()),
      relations: cap(this.relations.values()),
      facts: cap(this.facts.values()),
    };
  }
}

function cleanName(name: string): string {
  return name.replace(/['’]s$/, "").replace(/[\s,;:.!?-]+$/, "").trim().slice(0, MAX_EXTRACTED_LENGTH);
}

/** True when `name` is worth an entity (not a lone sentence word such as "Thanks"). */
function isName(name: string): boolean {
  const clean = cleanName(name);
  return clean.length > 1 && !NOT_NAMES.has(clean) && !NOT_NAMES.has(clean.split(/\s+/)[0]);
}

const re = (source: string) => new RegExp(source, "gu");

/** The patterns, most specific first. */
const PATTERNS: Pattern[] = [
  {
    re: re(
      String
        .raw`${MY}\s+name(?:\s+is|'s|’s)\s+(${NAME})|${I}\s+am\s+called\s+(${NAME})|(?:^|[\s,])(?:[Cc]all me|${I}'m called)\s+(${NAME})`,
    ),
    emit: (m, out) => {
      const name = m[1] ?? m[2] ?? m[3];
      if (isName(name)) out.fact("I", "name", out.entity(name, "person"));
    },
  },
  {
    // "I'm Ada." / "I am Ada, …": a name alone after "I am"
    re: re(String.raw`${I}(?:\s+am|'m|’m)\s+(${NAME})(?=\s*(?:[,.!;]|$|and\b))`),
    emit: (m, out) => {
      if (isName(m[1]) && !/^(?:from|in|at)$/i.test(m[1])) out.fact("I", "name", out.entity(m[1], "person"));
    },
  },
  {
    re: re(
      String
        .raw`${I}\s+(?:(?:still|now|currently)\s+)?(?:work|am working|'m working|’m working|started working|got a job)\s+(?:at|for|with)\s+(${NAME})(?:\s+(?:in|at)\s+(${NAME}))?`,
    ),
    emit: (m, out) => {
      if (!isName(m[1])) return;
      out.relation("I", "works_at", out.entity(m[1], "organization"));
      if (m[2] && isName(m[2])) out.relation("I", "located_in", out.entity(m[2], "place"));
    },
  },
  {
    re: re(
      String
        .raw`${I}(?:\s+(?:have|just|recently|finally|now)|'ve|’ve)*\s+(?:live|am living|'m living|’m living|reside|moved|relocated|am moving|'m moving|’m moving|am based|'m based|’m based|am located|'m located)\s+(?:in|to)\s+(${NAME})`,
    ),
    emit: (m, out) => {
      if (isName(m[1])) out.relation("I", "located_in", out.entity(m[1], "place"));
    },
  },
  {
    re: re(String.raw`${I}(?:\s+am|'m|’m)\s+from\s+(${NAME})|${I}\s+come\s+from\s+(${NAME})`),
    emit: (m, out) => {
      const place = m[1] ?? m[2];
      if (isName(place)) out.relation("I", "comes_from", out.entity(place, "place"));
    },
  },
  {
    re: re(String.raw`${I}\s+(?:study|studied|am studying|'m studying|’m studying)\s+at\s+(${NAME})`),
    emit: (m, out) => {
      if (isName(m[1])) out.relation("I", "studies_at", out.entity(m[1], "organization"));
    },
  },
  {
    re: re(
      String
        .raw`${I}(?:\s+am|'m|’m)\s+(?:a|an)\s+([a-z][a-z -]{2,40}?)(?:\s+(?:at|for)\s+(${NAME}))?(?=\s*(?:[,.!;]|$))`,
    ),
    emit: (m, out) => {
      out.fact("I", "job_title", m[1].trim());
      if (m[2] && isName(m[2])) out.relation("I", "works_at", out.entity(m[2], "organization"));
    },
  },
  {
    re: re(String.raw`${MY}\s+(${KIN_WORDS})(?:'s name|’s name)?(?:\s+is|,)?\s+(?:called\s+|named\s+)?(${NAME})`),
    emit: (m, out) => {
      if (isName(m[2])) {
        out.relation("I", KIN[m[1]], out.entity(m[2], m[1] === "cat" || m[1] === "dog" ? "thing" : "person"));
      }
    },
  },
  {
    re: re(String.raw`(${NAME})\s+is\s+my\s+(${KIN_WORDS})\b`),
    emit: (m, out) => {
      if (isName(m[1])) {
        out.relation("I", KIN[m[2]], out.entity(m[1], m[2] === "cat" || m[2] === "dog" ? "thing" : "person"));
      }
    },
  },
  {
    re: re(String.raw`${MY}\s+(?:e-?mail(?:\s+address)?|address)\s+is\s+(${EMAIL})`),
    emit: (m, out) => out.fact("I", "email", m[1].replace(/\.$/, "")),
  },
  {
    re: re(String.raw`${MY}\s+(?:website|homepage|home page|blog|site)\s+is\s+(${URL_RE})`),
    emit: (m, out) => out.fact("I", "website", m[1].replace(/[.,]$/, "")),
  },
  {
    re: re(
      String.raw`${MY}\s+(?:birthday|date of birth)\s+is\s+(?:on\s+)?(${DATE})|${I}\s+was\s+born\s+on\s+(${DATE})`,
    ),
    emit: (m, out) => out.fact("I", "born_on", m[1] ?? m[2]),
  },
  {
    re: re(String.raw`${I}(?:\s+am|'m|’m)\s+(\d{1,3})(?:\s+years?\s+old)?(?=\s*(?:[,.!;]|$))`),
    emit: (m, out) => out.fact("I", "age", m[1]),
  },
  {
    // third person: "Grace works at Navy (in Washington)"
    re: re(String.raw`(${NAME})\s+(?:works|is working|worked)\s+(?:at|for)\s+(${NAME})(?:\s+in\s+(${NAME}))?`),
    emit: (m, out) => {
      if (!isName(m[1]) || !isName(m[2])) return;
      const who = out.entity(m[1], "person");
      out.relation(who, "works_at", out.entity(m[2], "organization"));
      if (m[3] && isName(m[3])) out.relation(who, "located_in", out.entity(m[3], "place"));
    },
  },
  {
    re: re(String.raw`(${NAME})\s+(?:lives|is living|moved|has moved|relocated)\s+(?:in|to)\s+(${NAME})`),
    emit: (m, out) => {
      if (isName(m[1]) && isName(m[2])) {
        out.relation(out.entity(m[1], "person"), "located_in", out.entity(m[2], "place"));
      }
    },
  },
  {
    re: re(String.raw`(${NAME})\s+is\s+(?:located|based|headquartered)\s+in\s+(${NAME})`),
    emit: (m, out) => {
      if (isName(m[1]) && isName(m[2])) {
        out.relation(out.entity(m[1], "thing"), "located_in", out.entity(m[2], "place"));
      }
    },
  },
  {
    re: re(String.raw`(${NAME})['’]s\s+e-?mail(?:\s+address)?\s+is\s+(${EMAIL})`),
    emit: (m, out) => {
      if (isName(m[1])) out.fact(out.entity(m[1], "person"), "email", m[2].replace(/\.$/, ""));
    },
  },
  {
    // "X is a Y": a type, kept as a fact about X ("Initech is a software company")
    re: re(
      String
        .raw`(${NAME})\s+is\s+(?:a|an)\s+([a-z][a-z -]{2,60}?)(?=\s*(?:[,.!;]|$|\s(?:in|at|from|that|which|who)\b))`,
    ),
    emit: (m, out) => {
      if (isName(m[1])) out.fact(out.entity(m[1], "thing"), "is_a", m[2].trim());
    },
  },
];

/** A sentence ends at . ! ? (not after a title or a legal form) or a line break. */
const SENTENCE_END = /(?<!\b(?:Dr|Mr|Mrs|Ms|Prof|St|Inc|Corp|Ltd|Co|Jr|Sr|vs)\.)(?<=[.!?])\s+|\n+/u;
const CAPITALISED = re(NAME);
const PLACE_BEFORE = /(?:\b(?:in|to|from|near|visit|visited|visiting)\s+)$/;
const TITLE_BEFORE = /(?:\b(?:Mr|Mrs|Ms|Dr|Prof)\.?\s+)$/;

/**
 * Extracts entities, relations and facts from what the user said. `I` in the result is the
 * speaker (the weaver resolves it to the user's entity).
 *
 * @example
 * ```ts
 * extractWithRules("My name is Ada. I work at Initech in Berlin.");
 * // relations: I works_at Initech, I located_in Berlin; facts: I name Ada
 * ```
 */
export function extractWithRules(text: string): Extraction {
  const out = new Builder();
  for (const sentence of text.split(SENTENCE_END)) {
    const line = sentence.replace(/[.!?]+$/, "").trim();
    if (!line) continue;
    for (const pattern of PATTERNS) {
      pattern.re.lastIndex = 0;
      for (let m = pattern.re.exec(line); m; m = pattern.re.exec(line)) pattern.emit(m, out);
    }
    // names no pattern explained: a capitalised word that does not start the sentence, or a
    // sentence-initial run of two or more capitalised words ("New York is lovely")
    CAPITALISED.lastIndex = 0;
    for (let m = CAPITALISED.exec(line); m; m = CAPITALISED.exec(line)) {
      const name = cleanName(m[0]);
      const initial = line.slice(0, m.index).trim() === "";
      if (!isName(name) || out.claimed.has(name) || (initial && !/\s/.test(name))) continue;
      if (/^[A-Z]{2,}$/.test(name) && name.length > 6) continue; // shouting, not a name
      const before = line.slice(0, m.index);
      const type: EntityType = TITLE_BEFORE.test(before) ? "person" : PLACE_BEFORE.test(before) ? "place" : "thing";
      out.entity(name, type);
    }
  }
  return out.build();
}

/** The dates a text mentions, as written (the weaver keeps them with the facts of that message). */
export function datesIn(text: string): string[] {
  return [...text.matchAll(re(DATE))].map((m) => m[0]);
}
