"""Stakeholder attribution: who holds the stance of a sentence, resolved to one name per stakeholder.

Rules, in order: the speaker of a quote (``..." said X``, ``X said "...``); ``according to X``; the
subject of an attribution verb (said, claimed, urged, denied, warned, replied...); otherwise the first
named party of the sentence. Short names, role nouns ("the company") and pronouns resolve to the
fullest name used earlier in the article. A quote that runs over several sentences takes the speaker
named where it closes. Sentence openers ("During ...", "Separately,") are never a party; "A and B" is
two parties when either is named alone in the article, and a quote goes to one of them; role nouns
resolve to the last party of their kind (a public body for "the ministry", a company for "the company").
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

VERBS = (
    "said|says|say|told|tells|added|adds|claimed|claims|claim|urged|urges|urge|denied|denies|deny|warned|"
    "warns|warn|replied|replies|argued|argues|argue|insisted|insists|insist|accused|accuses|accuse|alleged|"
    "alleges|allege|noted|notes|stated|states|wrote|writes|called|calls|described|describes|rejected|"
    "rejects|reject|dismissed|dismisses|dismiss|maintained|maintains|maintain|contended|contends|countered|"
    "counters|acknowledged|acknowledges|cautioned|cautions|predicted|predicts|vowed|vows|pledged|pledges|"
    "expects|expected|believes|believed|believe|insisted|stressed|stresses|questioned|questions|asked|asks|"
    "demanded|demands|blamed|blames|complained|complains|conceded|concedes|promised|promises|suggested|"
    "suggests|announced|announces|fears|feared|fear|doubts|doubted|doubt|hopes|hoped|is confident|was confident|"
    "is sceptical|is skeptical|was sceptical|was skeptical|remains|remained|has said|had said|have said"
)
ORG_WORDS = {
    "inc", "corp", "corporation", "group", "holdings", "ltd", "plc", "llc", "co", "company", "bank",
    "ministry", "department", "council", "authority", "commission", "agency", "board", "union",
    "association", "federation", "league", "party", "court", "office", "institute", "university", "trust",
    "foundation", "fund", "partners", "energy", "renewables", "airlines", "airways", "foods", "motors",
    "systems", "technologies", "labs", "health", "pharmaceuticals", "pharma", "capital", "securities",
    "services", "service", "committee", "coalition", "alliance", "network", "club", "treasury",
    "parliament", "senate", "assembly", "bureau", "administration", "regulator", "police", "school",
    "schools", "district", "hospital", "college", "exchange", "industries", "media", "news", "wire",
    "insurance", "logistics", "rail", "transit", "port", "mining", "steel", "chemicals", "cooperative",
    "co-op", "collective", "campaign", "watchdog", "tribunal", "inspectorate", "lab", "telecom", "bancorp",
}
ROLE_NOUNS = {
    "company", "firm", "group", "bank", "carrier", "insurer", "lender", "retailer", "manufacturer", "maker",
    "ministry", "department", "agency", "regulator", "watchdog", "council", "union", "board", "commission",
    "authority", "government", "club", "league", "federation", "association", "airline", "operator",
    "utility", "developer", "district", "court", "committee", "campaign", "coalition", "university",
    "hospital", "school", "producer", "supplier", "distributor", "broadcaster", "platform",
    "startup", "consortium", "chain", "administration", "panel", "tribunal", "inspectorate", "exchange",
}
TITLE_WORDS = {
    "minister", "manager", "councillor", "councilor", "councilwoman", "councilman", "president", "director",
    "rep", "rep.", "sen", "sen.", "senator", "governor", "mayor", "chair", "chairman", "chairwoman", "secretary",
    "commissioner", "judge", "justice", "chief", "executive", "officer", "spokesperson", "spokesman",
    "spokeswoman", "superintendent", "deputy", "attorney", "general", "representative", "lawmaker", "dr", "dr.",
    "mr", "mr.", "mrs", "mrs.", "ms", "ms.", "prof", "prof.", "professor", "coach", "captain", "inspector",
    "treasurer", "ceo", "cfo", "founder", "chancellor", "premier", "ambassador", "economist", "analyst",
}
PUBLIC_BODY_WORDS = {"ministry", "department", "agency", "council", "commission", "authority", "government",
                     "parliament", "senate", "assembly", "bureau", "administration", "court", "office", "treasury",
                     "regulator", "board", "tribunal", "inspectorate", "police", "committee", "union"}
COMPANY_NOUNS = {"company", "firm", "group", "carrier", "insurer", "lender", "retailer", "manufacturer", "maker",
                 "airline", "operator", "utility", "developer", "producer", "supplier", "distributor", "startup",
                 "chain", "platform", "broadcaster", "bank", "consortium"}
PERSON_PRONOUNS = {"he", "she", "him", "her"}
ORG_PRONOUNS = {"it", "they", "we"}
TITLES = re.compile(
    r"^(?:(?:mr|mrs|ms|dr|prof|sen|rep|gov|judge|justice|president|minister|chancellor|commissioner|"
    r"mayor|councillor|councilwoman|councilman|coach|chief|executive|officer|spokesperson|spokesman|"
    r"spokeswoman|secretary|director|chair|chairman|chairwoman|lawyer|attorney|deputy|general|"
    r"superintendent|inspector|sheriff|captain|manager|analyst|economist|professor)\.?\s+)+",
    re.I,
)
CONNECTORS = {"of", "for", "and", "&", "de", "van", "von", "du", "da", "la", "on"}
STOP_CAPS = {
    "The", "A", "An", "But", "And", "In", "On", "At", "For", "It", "This", "That", "These", "Those", "When",
    "While", "After", "Before", "Since", "If", "As", "By", "With", "Under", "Asked", "According", "Still",
    "Yet", "So", "Meanwhile", "However", "Last", "Next", "Earlier", "Later", "Some", "Many", "Most", "Two",
    "Three", "Four", "One", "Critics", "Officials", "Analysts", "Both", "Neither", "Such", "We", "They",
    "He", "She", "Our", "Their", "His", "Her", "Its", "There", "Here", "What", "Why", "How", "Who", "Not",
    "No", "Nobody", "None", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday",
    "January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
    "November", "December", "I", "You", "Even", "Only", "Instead", "Across", "From", "To", "Over", "Of",
}
# Capitalised words that start no party's name: time phrases, prepositions, quantifiers, linking adverbs
# ("During second quarter earnings, Meta boasted ..."). Unlike STOP_CAPS they may sit inside a name
# ("Coalition Against Online Hate").
OPENERS = STOP_CAPS | {
    "During", "Following", "Throughout", "Despite", "Amid", "Ahead", "Within", "Without", "Until", "Although",
    "Though", "Because", "Unlike", "Once", "Now", "Today", "Yesterday", "Tonight", "Overall", "Also", "Several",
    "Few", "Each", "Every", "All", "Any", "Another", "Other", "Others", "Much", "More", "Less", "Among",
    "Against", "Beyond", "Through", "Upon", "About", "Around", "Between", "Inside", "Outside", "Whether",
    "Where", "Then", "Thus", "Therefore", "Indeed", "Nonetheless", "Nevertheless", "Moreover", "Furthermore",
    "Again", "First", "Second", "Third", "Fourth", "Late", "Early", "Speaking", "Describing",
    "Year", "Quarter", "Week", "Month", "Days", "Weeks", "Months", "Years", "Hours", "Tomorrow", "Q1", "Q2",
    "Q3", "Q4",
}
# Words that open an introductory phrase ending at the first comma ("In a statement, ...").
INTRO_WORDS = (OPENERS - STOP_CAPS) | {"In", "After", "Before", "When", "While", "Since", "If", "As", "Under",
                                       "With", "By", "On", "At", "Last", "Next", "Earlier", "Later",
                                       "Meanwhile", "However", "Still", "Yet", "Asked"}
# A capitalised sentence opener ending like this and followed by a comma (or, for -ing, a lowercase word)
# is an adverb or a participle ("Separately, ...", "Writing for the majority, ..."), not a name.
OPENER_SUFFIX = re.compile(r"(?:ly|ing)$")
# News outlets: named in datelines and "told X", never the party behind "the company".
OUTLET_WORDS = {"wire", "news", "times", "post", "journal", "herald", "tribune", "gazette", "press"}
WORD = re.compile(r"[A-Za-z][\w’'&.-]*")
OPEN_QUOTE = re.compile(r"^\s*[“\"]")
QUOTE_CHARS = re.compile("[“”\"]")


def normalize(name: str) -> str:
    """One key per stakeholder: no titles, possessives, leading 'the', case or extra spaces."""
    name = re.sub(r"[’']s\b", "", name.strip())
    name = TITLES.sub("", name)
    name = re.sub(r"^the\s+", "", name, flags=re.I)
    name = re.sub(r"[^\w&\- ]+", " ", name)
    return re.sub(r"\s+", " ", name).strip().lower()


def strip_titles(name: str) -> str:
    """'City Manager Raymond Tull' -> 'Raymond Tull': a person's name follows the last title word."""
    words = name.split()
    if _is_org(name):
        return name
    last_title = max((i for i, w in enumerate(words) if w.lower() in TITLE_WORDS), default=-1)
    return " ".join(words[last_title + 1 :]) if 0 <= last_title < len(words) - 1 else name


def _is_org(name: str) -> bool:
    words = [w.lower().strip(".,") for w in name.split()]
    return any(w in ORG_WORDS for w in words) or "of" in words[1:]


def _is_opener(text: str, tokens: list[tuple[int, str]]) -> bool:
    """The sentence's first word is an adverb or participle ("Separately,", "Writing for ...")."""
    start, word = tokens[0]
    if text[:start].strip(" “\"‘'(") or not OPENER_SUFFIX.search(word) or len(tokens) < 2:
        return False
    after = text[start + len(word) :].lstrip(" ")
    return after.startswith(",") or (word.endswith("ing") and tokens[1][1][:1].islower())


def parties(name: str, named_alone: set[str] | frozenset[str] = frozenset()) -> list[str]:
    """The parties a capitalised run names. "the DoJ and TikTok" is two when either side is named on its own
    elsewhere in the article (``named_alone``); "Department for Business and Trade" stays one name."""
    conjuncts = [part.strip() for part in re.split(r"\s+and\s+", name) if part.strip()]
    alone = [part for part in conjuncts if part in named_alone]
    if len(conjuncts) < 2 or not alone:
        return [name]
    # "Department for Business and Trade": a plain last word named alone ("Trade") is still part of the name.
    plain_tail = alone == [conjuncts[-1]] and re.fullmatch(r"[A-Z][a-z]+", conjuncts[-1])
    if plain_tail and re.search(r"\s(?:of|for)\s", conjuncts[0]):
        return [name]
    return conjuncts


def proper_names(text: str) -> list[tuple[int, str]]:
    """(offset, name) for runs of capitalised words, joined across 'of', 'and', '&'."""
    names = []
    tokens = [(m.start(), m.group().rstrip(".,;:’'")) for m in WORD.finditer(text)]
    i = 0
    while i < len(tokens):
        start, word = tokens[i]
        if not word[:1].isupper() or word in OPENERS or (i == 0 and _is_opener(text, tokens)):
            i += 1
            continue
        parts = [word]
        j = i + 1
        while j < len(tokens):
            gap = text[tokens[j - 1][0] + len(tokens[j - 1][1]) : tokens[j][0]]
            if gap.strip(" ") not in ("", "&"):
                break
            nxt = tokens[j][1]
            capitalised = nxt[:1].isupper() and nxt not in STOP_CAPS
            joins_names = nxt in CONNECTORS and j + 1 < len(tokens) and tokens[j + 1][1][:1].isupper()
            if capitalised or joins_names:
                parts.append(nxt)
                j += 1
            else:
                break
        while parts and parts[-1] in CONNECTORS:
            parts.pop()
        name = " ".join(parts)
        if not (len(parts) == 1 and start == 0 and name in STOP_CAPS):
            names.append((start, name))
        i = j
    return names


PUBLIC_BODY_WORDS |= {"service", "directorate", "government", "regulator", "watchdog"}
# A public body named by a lowercase noun: "Kestria's trade ministry", "the Kestrian veterinary service".
# (A company's "board" or a candidate's "campaign" speaks for the company or the candidate instead.)
ROLE_ALTERNATION = "|".join(sorted(PUBLIC_BODY_WORDS - {"court", "board", "union", "committee", "office"}))
NAMED_ROLE = re.compile(r"\b([A-Z][\w-]*(?:['’]s)?(?:\s+[a-z-]+)?\s+(?:" + ROLE_ALTERNATION + r"))\b")
# What only an organisation is said to do or have: "X said it", "X, which", "X's shares".
ORG_EVIDENCE = re.compile(r"^(?:,\s+which\b|\s+(?:said|says|added)\s+(?:it|its)\b|['’]s\s+(?:shares|stock|"
                          r"chief executive|board|customers|employees|stores|plants?|factory|revenue|profits?|"
                          r"earnings|products|spokesperson|spokesman|spokeswoman)\b)")


def _is_public_body(name: str) -> bool:
    return bool(PUBLIC_BODY_WORDS & set(name.lower().split()))


def _is_outlet(name: str) -> bool:
    return name.lower().split()[-1] in OUTLET_WORDS


@dataclass
class ArticleContext:
    """Names seen so far in one article, for resolving short names, role nouns and pronouns."""

    people: list[str] = field(default_factory=list)
    orgs: list[str] = field(default_factory=list)
    named_alone: set[str] = field(default_factory=set)  # every name run of the article, for parties()
    others: list[str] = field(default_factory=list)  # one-word names that are no person's ("Plumline")
    recency: dict[str, int] = field(default_factory=dict)  # name -> when it was last named

    def observe(self, text: str) -> None:
        for start, run in proper_names(text):
            org_evidence = bool(ORG_EVIDENCE.match(text[start + len(run) :]))
            for name in parties(run, self.named_alone):
                clean = strip_titles(name)
                if not clean:
                    continue
                if _is_org(clean) or (org_evidence and name == run.split(" and ")[-1]):
                    if clean in self.people:
                        self.people.remove(clean)
                    self._add(self.orgs, clean)
                elif len(clean.split()) >= 2 and clean not in self.orgs:
                    self._add(self.people, clean)
                elif re.fullmatch(r"[A-Z][a-z]+[A-Za-z]*", clean) and not any(
                        person.split()[-1] == clean for person in self.people):
                    self._add(self.others, clean)
        for match in NAMED_ROLE.finditer(text):
            name = match.group(1)
            if name.split()[0] not in STOP_CAPS:
                self._add(self.orgs, name)

    def _add(self, names: list[str], name: str) -> None:
        self.recency[name] = max(self.recency.values(), default=0) + 1
        if name in names:
            names.remove(name)
        if not any(name in longer.split(" ") or longer.endswith(" " + name) for longer in names):
            names.append(name)

    def _last_org(self, head: str) -> str | None:
        """The last organisation of the kind a role noun names: its own head word, else the same kind
        (a public body for "the ministry", a company for "the company"), never a news outlet."""
        candidates = [org for org in reversed(self.orgs) if not _is_outlet(org)]
        for org in candidates:
            if head in org.lower().split():
                return org
        if head in COMPANY_NOUNS:
            return next((org for org in candidates if not _is_public_body(org)), None)
        if head in PUBLIC_BODY_WORDS:
            return next((org for org in candidates if _is_public_body(org)), None)
        return candidates[0] if candidates else None

    def resolve(self, mention: str) -> str:
        mention = strip_titles(re.sub(r"[’']s$", "", mention.strip()).strip(" ,."))
        if " and " in mention:  # a quote goes to one party: the first one named
            mention = parties(mention, self.named_alone)[0]
        lower = mention.lower()
        if lower in PERSON_PRONOUNS:
            return self.people[-1] if self.people else mention
        if lower in ORG_PRONOUNS:
            last_org = self._last_org("")
            last_other = self.others[-1] if self.others else None
            # The most recent party: a one-word name ("Plumline said it ...") named after the last
            # organisation, else that organisation.
            if last_other and (not last_org or self.recency[last_other] > self.recency[last_org]):
                return last_other
            return last_org or mention
        role = re.match(r"^(?:the|its|their)\s+(?:[a-z-]+\s+)?([a-z-]+)$", lower)
        if role and role.group(1) in ROLE_NOUNS:
            return self._last_org(role.group(1)) or mention
        words = mention.split()
        for person in reversed(self.people):
            if mention == person or (len(words) == 1 and person.split()[-1] == mention):
                return person
        for name in reversed(self.orgs + self.people):
            if mention == name or name.startswith(mention + " ") or name.endswith(" " + mention):
                return name
        return mention


MENTION = (
    r"((?:[Tt]he|[Ii]ts|[Tt]heir)\s+(?:[a-z-]+\s+)?(?!(?:also|again|later|previously|has|had|have)\b)[a-z-]+"
    # ^ role noun: "the company", "its regulator" (not "the council also")
    r"|[A-Z][\w-]*(?:['’]s)?(?:\s+[a-z-]+)?\s+(?:" + ROLE_ALTERNATION + r")"  # "Kestria's trade ministry"
    r"|[A-Z][\w’'&.-]*(?:\s+(?:of|for|and|&|de|van|von)?\s*[A-Z][\w’'&.-]*)*"  # a capitalised name
    r"|[Hh]e|[Ss]he|[Tt]hey|[Ii]t|[Ww]e)"
)
AFTER_QUOTE = re.compile(
    r"[”\"]\s*,?\s*(?:(?:" + VERBS + r")\s+" + MENTION + r"|" + MENTION + r"\s+(?:" + VERBS + r"))\b")
ACCORDING = re.compile(r"\baccording to\s+" + MENTION)
SPOKESPERSON = re.compile(r"\b(?:[Aa]n?|[Tt]he)\s+(?:spokesperson|spokesman|spokeswoman|representative|lawyer|"
                          r"attorney|official|statement)\s+(?:for|at|from|of|by)\s+" + MENTION)
SUBJECT_VERB = re.compile(
    MENTION + r"(?:\s*,[^,]{1,80}){0,3},?\s+"  # up to three appositives: "X, 34, who runs Y, said"
    r"(?:has\s+|had\s+|have\s+|also\s+|again\s+|later\s+|previously\s+)*(?:" + VERBS + r")\b")


def _acceptable(mention: str) -> bool:
    """Pronouns and role nouns ("the company") resolve later; other phrases must start with a name."""
    lower = mention.lower()
    if lower in ORG_PRONOUNS | PERSON_PRONOUNS:
        return True
    if re.match(r"^(?:the|its|their)\s", lower):
        return lower.split()[-1] in ROLE_NOUNS
    return mention.split()[0] not in OPENERS


def _speaker(text: str) -> str | None:
    for pattern in (AFTER_QUOTE, ACCORDING, SPOKESPERSON):
        for match in pattern.finditer(text):
            mention = next(g for g in match.groups() if g)
            if _acceptable(mention):
                return mention
    unquoted = re.sub(r"[“\"][^”\"]*[”\"]", " ", text)
    tokens = [(m.start(), m.group().rstrip(".,;:’'")) for m in WORD.finditer(unquoted)]
    if tokens and (tokens[0][1] in INTRO_WORDS or _is_opener(unquoted, tokens)) and "," in unquoted:
        # An introductory phrase ("Writing for the panel, Judge X said") holds no subject: blank it out.
        comma = unquoted.index(",")
        unquoted = " " * (comma + 1) + unquoted[comma + 1 :]
    for match in SUBJECT_VERB.finditer(unquoted):
        if _acceptable(match.group(1)):
            return match.group(1)
    return None


def attribute(sentences: list[str], needs_holder: list[bool]) -> list[str]:
    """The stakeholder of each sentence that ``needs_holder`` (its stance is not neutral), else ""."""
    named_alone = {name for text in sentences for _, name in proper_names(text)}
    context = ArticleContext(named_alone=named_alone)
    speakers: list[str | None] = []
    for text in sentences:
        found = _speaker(text)
        speakers.append(context.resolve(found) if found else None)
        context.observe(text)
    # A quote opened in one sentence and closed later takes the speaker named where it closes.
    for i, text in enumerate(sentences):
        if speakers[i] is None and OPEN_QUOTE.match(text) and len(QUOTE_CHARS.findall(text)) % 2 == 1:
            for j in range(i + 1, min(i + 4, len(sentences))):
                if speakers[j]:
                    speakers[i] = speakers[j]
                    break
    holders = []
    context = ArticleContext(named_alone=named_alone)
    for i, text in enumerate(sentences):
        holder = ""
        if needs_holder[i]:
            holder = speakers[i] or ""
            if not holder:
                names = proper_names(text)
                holder = context.resolve(parties(names[0][1], named_alone)[0]) if names else ""
        holders.append(holder)
        context.observe(text)
    return holders


def _same(predicted: str, gold: str) -> bool:
    return normalize(predicted) == normalize(gold)


def evaluate(articles: list[dict]) -> dict[str, float]:
    """Accuracy over a labeled set: one row per article with ``sentences`` and ``holders`` (index -> name).

    Strict: the normalised names are equal. Partial: one name's words are a subset of the other's
    (the right party, but a shorter or longer form of its name).
    """
    total = strict = partial = 0
    for article in articles:
        gold = {int(i): name for i, name in article["holders"].items()}
        predicted = attribute(article["sentences"], [i in gold for i in range(len(article["sentences"]))])
        for i, name in gold.items():
            total += 1
            strict += _same(predicted[i], name)
            a, b = set(normalize(predicted[i]).split()), set(normalize(name).split())
            partial += bool(a) and (a <= b or b <= a)
    return {"sentences": total, "accuracy": strict / max(total, 1), "partial_accuracy": partial / max(total, 1)}
