/**
 * How the weaver compares names and predicates: a normalised name key (so "initech", "Initech Inc."
 * and "INITECH" are one entity), predicate spelling, and which predicates hold one value at a time
 * (a newer value retires the older fact).
 */

/** Legal-form suffixes that do not change which organisation a name means. */
const LEGAL_SUFFIXES = new Set([
  "inc",
  "incorporated",
  "corp",
  "corporation",
  "co",
  "company",
  "llc",
  "ltd",
  "limited",
  "plc",
  "gmbh",
  "ag",
  "sa",
  "sarl",
  "bv",
  "oy",
  "ab",
]);

/**
 * The key two names share when they name the same thing: NFKC, lower case, no diacritics or
 * punctuation, single spaces, no leading article and no trailing legal form.
 *
 * @example
 * ```ts
 * nameKey("Initech, Inc.") === nameKey("initech"); // true
 * ```
 */
export function nameKey(name: string): string {
  const words = name.normalize("NFKD").replace(/\p{M}+/gu, "").normalize("NFKC").toLowerCase()
    .replace(/['’]s\b/g, "").replace(/[^\p{L}\p{N}@.+_-]+/gu, " ").replace(/(?<!\S)[.]+|[.]+(?!\S)/g, " ")
    .trim().split(/\s+/).filter(Boolean);
  if (words.length > 1 && (words[0] === "the" || words[0] === "a" || words[0] === "an")) words.shift();
  while (words.length > 1 && LEGAL_SUFFIXES.has(words[words.length - 1].replaceAll(".", ""))) words.pop();
  return words.join(" ");
}

/** A predicate in snake_case ("Works at" → "works_at"). */
export function predicateKey(predicate: string): string {
  return predicate.normalize("NFKC").trim().toLowerCase().replace(/[^\p{L}\p{N}]+/gu, "_").replace(/^_+|_+$/g, "")
    .slice(0, 100) || "related_to";
}

/**
 * Predicates with one value at a time: a newer fact with another object retires the current one
 * (valid_to). Others (`likes`, `has_friend`, `mentioned`) accumulate.
 */
export const SINGLE_VALUED_PREDICATES: ReadonlySet<string> = new Set([
  "name",
  "located_in",
  "lives_in",
  "works_at",
  "studies_at",
  "job_title",
  "age",
  "email",
  "phone",
  "website",
  "born_on",
  "born_in",
  "has_spouse",
  "has_partner",
  "has_boss",
  "has_manager",
  "is_a",
]);

/** True when facts with `predicate` retire each other. */
export function isSingleValued(predicate: string): boolean {
  return SINGLE_VALUED_PREDICATES.has(predicateKey(predicate));
}

/** Words that name the speaker of a user message. */
const SELF = new Set(["i", "me", "my", "myself", "user", "the user", "speaker", "the speaker", "you"]);

/** True when an extracted subject or object means the person speaking. */
export function isSelf(name: string): boolean {
  return SELF.has(name.trim().toLowerCase());
}

/** A readable sentence for a triple ("Ada works at Initech"). */
export function factText(subject: string, predicate: string, object: string): string {
  const key = predicateKey(predicate);
  const verb = PHRASES[key] ?? key.replaceAll("_", " ");
  return `${subject} ${verb} ${object}`;
}

const PHRASES: Record<string, string> = {
  name: "is named",
  located_in: "is located in",
  lives_in: "lives in",
  works_at: "works at",
  studies_at: "studies at",
  job_title: "works as",
  age: "is aged",
  email: "has the email address",
  phone: "has the phone number",
  website: "has the website",
  born_on: "was born on",
  born_in: "was born in",
  is_a: "is",
  comes_from: "comes from",
  mentioned: "mentioned",
};
