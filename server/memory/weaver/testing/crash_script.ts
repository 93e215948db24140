/** The conversation the weaver's crash test replays: people who join companies and move between cities. */
const PEOPLE = ["Ada", "Bob", "Carol", "Dave", "Erin", "Frank", "Grace", "Heidi"];
const ORGS = ["Initech", "Globex", "Hooli", "Acme Corp", "Initech Inc."];
const CITIES = ["Berlin", "Paris", "London", "Lisbon", "Oslo", "Vienna"];

/** Message `i` of the script. */
export function scriptedMessage(i: number): string {
  const person = PEOPLE[i % PEOPLE.length];
  const round = Math.floor(i / PEOPLE.length);
  if (i === 0) return "My name is Ada. I work at Initech in Berlin.";
  if (round % 2 === 0) {
    return `${person} works at ${ORGS[(i + round) % ORGS.length]} in ${CITIES[(i + round) % CITIES.length]}.`;
  }
  return i % 3 === 0
    ? `I moved to ${CITIES[(i * 7) % CITIES.length]}`
    : `${person} moved to ${CITIES[(i * 5) % CITIES.length]}.`;
}
