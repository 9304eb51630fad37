"""Stakeholder attribution: who holds the stance of a sentence, resolved to one name per stakeholder.

Rules, in order: the speaker of a quote (``..." said X``, ``X said "...``); ``according to X``; the
subject of an attribution verb (said, claimed, urged, denied, warned, replied...); otherwise the first
named party of the sentence. Short names, role nouns ("the company") and pronouns resolve to the
fullest name used earlier in the article. A quote that runs over several sentences takes the speaker
named where it closes.
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


def proper_names(text: str) -> list[tuple[int, str]]:
    """(offset, name) for runs of capitalised words, joined across 'of', 'and', '&'."""
    names = []
    tokens = [(m.start(), m.group().rstrip(".,;:’'")) for m in WORD.finditer(text)]
    i = 0
    while i < len(tokens):
        start, word = tokens[i]
        if not word[:1].isupper() or word in STOP_CAPS:
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


@dataclass
class ArticleContext:
    """Names seen so far in one article, for resolving short names, role nouns and pronouns."""

    people: list[str] = field(default_factory=list)
    orgs: list[str] = field(default_factory=list)

    def observe(self, text: str) -> None:
        for _, name in proper_names(text):
            clean = strip_titles(name)
            if not clean:
                continue
            if _is_org(clean):
                self._add(self.orgs, clean)
            elif len(clean.split()) >= 2:
                self._add(self.people, clean)

    @staticmethod
    def _add(names: list[str], name: str) -> None:
        if name in names:
            names.remove(name)
        if not any(name in longer.split(" ") or longer.endswith(" " + name) for longer in names):
            names.append(name)

    def resolve(self, mention: str) -> str:
        mention = strip_titles(re.sub(r"[’']s$", "", mention.strip()).strip(" ,."))
        lower = mention.lower()
        if lower in PERSON_PRONOUNS:
            return self.people[-1] if self.people else mention
        if lower in ORG_PRONOUNS:
            return self.orgs[-1] if self.orgs else mention
        role = re.match(r"^(?:the|its|their)\s+(?:[a-z-]+\s+)?([a-z-]+)$", lower)
        if role and role.group(1) in ROLE_NOUNS:
            head = role.group(1)
            for org in reversed(self.orgs):
                if head in org.lower().split():
                    return org
            if head in COMPANY_NOUNS:  # "the company" is not the ministry it negotiates with
                for org in reversed(self.orgs):
                    if not PUBLIC_BODY_WORDS & set(org.lower().split()):
                        return org
            return self.orgs[-1] if self.orgs else mention
        words = mention.split()
        for person in reversed(self.people):
            if mention == person or (len(words) == 1 and person.split()[-1] == mention):
                return person
        for name in reversed(self.orgs + self.people):
            if mention == name or name.startswith(mention + " ") or name.endswith(" " + mention):
                return name
        return mention


MENTION = (
    r"((?:[Tt]he|[Ii]ts|[Tt]heir)\s+(?:[a-z-]+\s+)?[a-z-]+"  # role noun: "the company", "its regulator"
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
    return mention.split()[0] not in STOP_CAPS


def _speaker(text: str) -> str | None:
    for pattern in (AFTER_QUOTE, ACCORDING, SPOKESPERSON):
        for match in pattern.finditer(text):
            mention = next(g for g in match.groups() if g)
            if _acceptable(mention):
                return mention
    unquoted = re.sub(r"[“\"][^”\"]*[”\"]", " ", text)
    for match in SUBJECT_VERB.finditer(unquoted):
        if _acceptable(match.group(1)):
            return match.group(1)
    return None


def attribute(sentences: list[str], needs_holder: list[bool]) -> list[str]:
    """The stakeholder of each sentence that ``needs_holder`` (its stance is not neutral), else ""."""
    context = ArticleContext()
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
    context = ArticleContext()
    for i, text in enumerate(sentences):
        holder = ""
        if needs_holder[i]:
            holder = speakers[i] or ""
            if not holder:
                names = proper_names(text)
                holder = context.resolve(names[0][1]) if names else ""
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
