/**
 * A small labelled relevance set for hybrid search (tests and `deno task bench retrieval`): 50
 * remembered messages, each with the question that should find it, among 250 distractors that share
 * its words or its topic (75 of them say the same as a remembered message about another name or code). Half the questions paraphrase their message (few shared words: the
 * vector side's case), half name something rare in it (a name, a code: the keyword side's case).
 */

/** A question and the index (in {@link RELEVANCE_MESSAGES}) of the message that answers it. */
export interface LabelledQuery {
  query: string;
  relevant: number;
}

const PAIRS: [message: string, query: string][] = [
  // paraphrases
  ["I'm allergic to peanuts, so please keep them out of any recipe you suggest.", "which foods must I avoid in meals?"],
  [
    "My daughter starts kindergarten next September at the school on Maple Road.",
    "when does my kid begin her first year of class?",
  ],
  ["I prefer aisle seats when I fly because I get up a lot.", "seating preference on airplanes"],
  ["We adopted a grey rescue greyhound named Biscuit last spring.", "tell me about our pet dog"],
  [
    "My blood pressure was a bit high at the last checkup, the doctor wants me to cut salt.",
    "health advice from my physician about diet",
  ],
  ["I usually go running along the river before work, around six in the morning.", "what is my exercise routine?"],
  ["Our wedding anniversary is on the fourteenth of June.", "when did we get married?"],
  ["I can't stand horror films, they give me nightmares for days.", "movie genres I dislike"],
  ["The landlord said the rent goes up by eighty euros from March.", "how much more will the apartment cost?"],
  ["I'm learning Japanese and practise kanji every evening for twenty minutes.", "which language am I studying?"],
  ["My brother lives in Vancouver and works as a nurse.", "where is my sibling based and what is his job?"],
  ["I drink my coffee black, no sugar, ever since I quit sweets.", "how do I take my morning brew?"],
  ["The car failed its inspection because of worn brake pads.", "why didn't the vehicle pass the safety check?"],
  [
    "I want to save for a trip to Iceland to see the northern lights next winter.",
    "vacation I'm putting money aside for",
  ],
  [
    "My manager asked me to present the quarterly numbers to the board on Thursday.",
    "what work presentation do I have coming up?",
  ],
  ["I get migraines when I skip lunch, so I keep snacks in my bag.", "what triggers my headaches?"],
  ["We're repainting the living room a soft sage green.", "colour we chose for the lounge walls"],
  ["I'm vegetarian but I still eat eggs and cheese.", "what is my diet?"],
  ["My grandmother turns ninety in October and we're planning a party.", "family birthday celebration to organise"],
  ["The basement floods whenever it rains heavily, we need a sump pump.", "water problem in the house"],
  ["I play bass guitar in a small jazz band on weekends.", "what instrument do I perform with?"],
  ["I'm afraid of heights, glass elevators make me dizzy.", "my phobias"],
  ["My favourite book is a novel about a lighthouse keeper on a remote island.", "which story do I love reading most?"],
  ["We split the electricity bill three ways with the flatmates.", "how do we share household utility costs?"],
  ["I sleep badly when the bedroom is warmer than nineteen degrees.", "what helps me get a good night's rest?"],
  // rare names, codes and terms
  ["My dentist is Dr. Okonkwo, her practice is on Fell Street.", "Okonkwo practice street"],
  ["The wifi at the cabin is called LAKEHOUSE-5G and the password is on the fridge.", "LAKEHOUSE-5G network"],
  ["Support ticket ZX-4471 is about the broken login page.", "status of ZX-4471"],
  ["The plumber, Mr. Vasquez-Ortiz, comes back Tuesday to fix the boiler.", "when does Vasquez-Ortiz return?"],
  ["Our team's project is code-named Bluefinch and ships in May.", "Bluefinch release month"],
  ["The parcel tracking number is 1Z999AA10123456784.", "tracking 1Z999AA10123456784"],
  ["My insurance policy number is HX-2231-09, renewal is in August.", "policy HX-2231-09 renewal"],
  ["The Kowalczyk family next door has two loud huskies.", "Kowalczyk neighbours"],
  ["I keep the spare key in the Tupperware under the rhododendron.", "rhododendron key"],
  ["We're reading Middlemarch in the book club this month.", "Middlemarch book club"],
  ["The kids' swimming coach is called Thibault, lessons are Saturday at nine.", "Thibault lessons time"],
  ["My laptop is a ThinkPad X13 that I bought refurbished.", "ThinkPad X13"],
  ["The flight to Reykjavik is FI615, leaving at 07:40.", "FI615 departure"],
  ["Aunt Ingeborg sends a parcel of lebkuchen every Christmas.", "Ingeborg lebkuchen"],
  ["The router's admin page is at 192.168.8.1.", "192.168.8.1 admin"],
  ["Our accountant, Priyanka Raghunathan, needs the receipts by April.", "Raghunathan receipts deadline"],
  ["I take levothyroxine every morning before breakfast.", "levothyroxine timing"],
  ["The bakery on Quayside sells a sourdough called the Gannet loaf.", "Gannet loaf"],
  ["The server migration to Postgres 16 is tracked in JIRA-8812.", "JIRA-8812 migration"],
  ["My cousin Oluwaseun is getting married in Lagos in December.", "Oluwaseun wedding"],
  ["The bike lock combination is 7-3-9-1, don't forget it.", "bike lock combination"],
  ["I'm allergic to amoxicillin, it gave me hives as a child.", "amoxicillin reaction"],
  ["The garden shed needs a new roof of corrugated polycarbonate.", "polycarbonate shed roof"],
  ["We stayed at the Hotel Albergo Quercia in Siena last summer.", "Albergo Quercia"],
  ["My chess rating on the club ladder is 1642 after the Halloween blitz.", "chess rating 1642"],
];

/**
 * For the rare-term half: the term, and three others that make sibling messages saying the same
 * thing about something else. A sentence embedding barely tells the siblings apart (the case
 * hybrid search exists for); the exact term does.
 */
const SIBLINGS: Record<number, [term: string, others: string[]]> = {
  25: ["Okonkwo", ["Adeyemi", "Lindqvist", "Marchetti"]],
  26: ["LAKEHOUSE-5G", ["PINECREST-2G", "HARBOUR-NET", "MEADOW-5G"]],
  27: ["ZX-4471", ["ZX-4417", "QT-9012", "ZR-3388"]],
  28: ["Vasquez-Ortiz", ["Hollingsworth", "Nakashima", "Delacroix"]],
  29: ["Bluefinch", ["Redkite", "Stonechat", "Greywagtail"]],
  30: ["1Z999AA10123456784", ["1Z888BB20234567895", "JD014600006281", "LX552013977CN"]],
  31: ["HX-2231-09", ["HX-2213-90", "KP-7781-12", "MV-0045-33"]],
  32: ["Kowalczyk", ["Fitzgerald", "Haraldsen", "Benedetti"]],
  33: ["rhododendron", ["hydrangea", "lavender", "boxwood"]],
  34: ["Middlemarch", ["Buddenbrooks", "Rebecca", "Persuasion"]],
  35: ["Thibault", ["Marguerite", "Eduardo", "Siobhan"]],
  36: ["X13", ["T14s", "E16", "X1"]],
  37: ["FI615", ["FI614", "SK1423", "LH2460"]],
  38: ["Ingeborg", ["Hildegard", "Rosalind", "Philippa"]],
  39: ["192.168.8.1", ["192.168.1.254", "10.0.0.138", "172.16.0.1"]],
  40: ["Raghunathan", ["Castellanos", "Abernathy", "Wojciechowski"]],
  41: ["levothyroxine", ["metformin", "atorvastatin", "omeprazole"]],
  42: ["Gannet", ["Puffin", "Cormorant", "Kittiwake"]],
  43: ["JIRA-8812", ["JIRA-8821", "JIRA-7734", "JIRA-9050"]],
  44: ["Oluwaseun", ["Chidinma", "Babatunde", "Folasade"]],
  45: ["7-3-9-1", ["4-8-2-6", "1-5-5-0", "9-0-7-3"]],
  46: ["amoxicillin", ["penicillin", "ibuprofen", "codeine"]],
  47: ["polycarbonate", ["bitumen", "cedar", "zinc"]],
  48: ["Quercia", ["Cipresso", "Olivo", "Castagno"]],
  49: ["1642", ["1587", "1703", "1499"]],
};

const DISTRACTOR_TOPICS = [
  "I should change my email password soon, it is getting old.",
  "The doctor's office called to move my appointment.",
  "Can you recommend a recipe with chickpeas and spinach?",
  "My sister is allergic to cats, so she never visits our friends with kittens.",
  "The school sent a letter about the new lunch menu.",
  "I watched a documentary about deep sea fish last night.",
  "The bank wants me to confirm my address again.",
  "We need to buy more dishwasher tablets and bin bags.",
  "The train was delayed by forty minutes this morning.",
  "I'm thinking about learning to bake bread at home.",
  "The weather forecast says storms all weekend.",
  "My phone battery drains too fast these days.",
  "I need to renew my passport before the summer.",
  "The neighbour's cat keeps sleeping on our car.",
  "Let's plan a picnic in the park when it's sunny.",
  "The gym changed its opening hours again.",
  "I found an old photo album in the attic.",
  "The printer at work is jammed every other day.",
  "Could you summarise the news about the election?",
  "I'm trying to drink more water during the day.",
  "The supermarket was out of oat milk again.",
  "Our street is getting new lamp posts next month.",
  "I lost my umbrella on the bus yesterday.",
  "The museum has a new exhibition on ancient maps.",
  "I should call the insurance company about the claim.",
];
const DISTRACTOR_TAILS = [
  "",
  " Remind me later.",
  " It keeps bothering me.",
  " What do you think?",
  " Not urgent though.",
  " I mentioned it to my partner.",
  " Maybe next week.",
  " That was annoying.",
  " Let's talk about it tomorrow.",
  " Write it down somewhere.",
];

/**
 * Chatter around the rare-term half's messages: people mention such details in passing, in long
 * messages about other things, where one averaged sentence vector dilutes them.
 */
const CHATTER: [before: string, after: string][] = [
  [
    "Busy week again: the kids had a school play, the dishwasher broke and I spent an evening on hold with the bank.",
    "Anyway, I also need to sort the photos from the holiday and book the car in for its service.",
  ],
  [
    "Quick brain dump before I forget everything, it has been a long day at the office with back to back calls.",
    "Also remind me to water the tomatoes and to answer the email from the school about the trip.",
  ],
  [
    "So many small things to keep track of lately, my notes app is a mess and the calendar is full.",
    "Other than that the weekend looks quiet, maybe a walk by the river if the weather holds.",
  ],
  [
    "Writing this down while I wait for the train, which is late as usual, and the coffee here is awful.",
    "I still have to finish the slides for Monday and call my mum back about the birthday lunch.",
  ],
  [
    "Random notes from today, in no particular order, because I keep losing track of these things.",
    "Lastly the gym changed its hours again so mornings are out, I will try evenings next week.",
  ],
];

function inPassing(message: string, i: number): string {
  const [before, after] = CHATTER[i % CHATTER.length];
  return `${before} ${message} ${after}`;
}

/** 375 messages: the 50 remembered ones first, then 75 siblings and 250 everyday distractors. */
export const RELEVANCE_MESSAGES: string[] = [
  ...PAIRS.map(([message], i) => (i in SIBLINGS ? inPassing(message, i) : message)),
  ...Object.entries(SIBLINGS).flatMap(([i, [term, others]]) =>
    others.map((other) => PAIRS[Number(i)][0].replace(term, other))
  ),
  ...DISTRACTOR_TOPICS.flatMap((topic) => DISTRACTOR_TAILS.map((tail) => topic + tail)),
];

/** The 50 labelled questions. */
export const RELEVANCE_QUERIES: LabelledQuery[] = PAIRS.map(([, query], relevant) => ({ query, relevant }));
