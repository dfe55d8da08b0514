"""A conversational history with known answers, for `recall_quality.py --history conversation`.

Two friends chat over many dated sessions, as a chat log exported into athena would read: one event per
turn, the speaker in the event's metadata (`{"speaker": ...}`, not in the text), the conversation as
the event's `source`, the session as its `session_id`. Most turns are small talk; facts are said in
passing, inside longer turns, and both speakers have facts of the same kinds (both have a pet, both
travel), so a question about one speaker has look-alike answers from the other. Topics come back in
other sessions without the answer ("how is the cat?").

Questions are phrased in other words than their evidence and come in five kinds:
- `single`: one turn answers it ("What did Maya name the animal she adopted?").
- `multi`: two turns in different sessions together answer it ("Which instruments does Maya play?").
- `exchange`: the friend's question and the reply after it, which holds the answer but not the topic
  ("How was the concert?" "Incredible, Moonfolk played for three hours."): "Which band did Tom see?"
- `when`: one turn, and its session's date is the answer ("When did Maya run a half marathon?").
- `dated`: the question names a month; the same kind of outing happened in other months too ("What
  exhibition did Maya see in March 2026?"), so only the date tells the evidence apart.

The same questions also come `echoed`: worded with the evidence's own words, as someone who has just
read the chat writes them ("What did Maya name the little dog adopted from the shelter?"). Paraphrased,
the word branch has little to match and meaning decides; echoed, words are the stronger clue, so the
two wordings test a fusion from both sides.

Deterministic for a seed; written for this project (no public benchmark's data or wording).
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from resources.memory.event_line import Event

START = datetime(2025, 9, 6, 18, 0, tzinfo=UTC)
PAIRS = (("Maya", "Jonas"), ("Priya", "Tom"), ("Elena", "Sam"))

# Small talk is an opener and a remark, so few turns repeat word for word (a real chat's do not either).
OPENERS = ("Haha,", "Oh wow,", "Honestly,", "Yeah,", "Ugh,", "Aw,", "Well,", "Ha, true,", "Oh no,", "Hmm,",
           "Right,", "Sure,")  # fmt: skip
REMARKS = (
    "that sounds just like you.",
    "that's amazing!",
    "I totally get that, it happens to me all the time.",
    "tell me more, I want to hear everything.",
    "sorry for the late reply, the day just ran away from me.",
    "enough about me. What's new with you?",
    "that's so nice to hear.",
    "I'm a bit tired, work has been a lot lately.",
    "I can't wait for the weekend.",
    "let's catch up again soon, okay?",
    "I knew you would say that.",
    "it was good, but the weather was awful the whole time.",
    "I've been trying to sleep more and look at my phone less.",
    "did you see the news about the bridge closing? Traffic is a mess.",
    "I remember you mentioned it last time.",
    "fingers crossed it all works out.",
    "we should really plan something together this month.",
    "busy week, but nothing dramatic.",
    "how have you been?",
    "I laughed way too hard at that.",
)
ASIDES = (
    "Work was chaotic as usual.",
    "The kids next door were loud again.",
    "I barely had time to cook this week.",
    "My phone screen cracked, of course.",
    "It rained every single day.",
    "I keep forgetting to call the bank.",
)


@dataclass(frozen=True)
class Fact:
    """A kind of fact: what a turn says (with {value}), how it is asked (with {name}), its values."""

    said: str
    asked: str
    values: tuple[str, ...]
    revisit: str  # the topic again, without the answer


SINGLE = (
    Fact(
        "We finally adopted a little dog from the shelter, we named her {value}.",
        "What is the name of {name}'s dog?",
        ("Pepper", "Biscuit", "Luna", "Miso", "Clover"),
        "How is the new dog settling in?",
    ),
    Fact(
        "I started the new job at {value} on Monday, the office is huge.",
        "Where did {name} start a new job?",
        ("Northwind Logistics", "Helios Energy", "Brightpath Health", "Quarry Labs"),
        "The first weeks at a new job are always strange.",
    ),
    Fact(
        "Turns out I'm allergic to {value}, the doctor confirmed it after the tests.",
        "What is {name} allergic to?",
        ("shellfish", "peanuts", "kiwi", "sesame"),
        "I had to change what I order at restaurants.",
    ),
    Fact(
        "I signed up for an evening course in {value} at the community college.",
        "What evening course is {name} taking?",
        ("ceramics", "accounting", "astronomy", "Italian cooking"),
        "The course keeps me busy on Tuesdays.",
    ),
    Fact(
        "My balcony is full of {value} now, I water them every morning before work.",
        "What does {name} grow on the balcony?",
        ("tomato plants", "succulents", "chili peppers", "herbs and basil"),
        "The balcony gets so much sun in the afternoon.",
    ),
    Fact(
        "For her birthday I got my mom {value}, she cried a little.",
        "What did {name} give their mom for her birthday?",
        ("a framed family photo", "a weekend at a spa", "a vintage record player", "a silk scarf"),
        "My mom's birthday dinner was lovely.",
    ),
    Fact(
        "I've been binge-watching {value} every night, I can't stop.",
        "Which TV series has {name} been watching?",
        ("The Lighthouse Keepers", "Signal Lost", "Copper Valley", "Night Shift Diaries"),
        "I stayed up way too late again.",
    ),
    Fact(
        "I'm practicing {value} with an app for twenty minutes a day.",
        "Which language is {name} learning?",
        ("Japanese", "Portuguese", "Korean", "Greek"),
        "Learning a language is harder than I expected.",
    ),
    Fact(
        "We sold the old car and bought a used {value}, it's so much quieter.",
        "What car did {name} buy?",
        ("Toyota Prius", "Volvo estate", "Mini Cooper", "Kia e-Niro"),
        "Parking downtown is impossible.",
    ),
    Fact(
        "I've been volunteering at the {value} every other Sunday.",
        "Where does {name} help out for free?",
        ("food bank", "animal shelter", "public library", "community garden"),
        "Sundays are my favourite day lately.",
    ),
)
# Two turns, in different sessions, that together answer one question.
MULTI = (
    (
        (
            "I've been taking {a} lessons twice a week, my fingers hurt!",
            "I picked up the {b} again after years, I'd forgotten how much I loved it.",
        ),
        "Which musical instruments does {name} play?",
        (("guitar", "piano"), ("violin", "drums"), ("cello", "ukulele"), ("saxophone", "flute")),
    ),
    (
        (
            "We spent a week in {a} in the summer, the food was incredible.",
            "My cousin convinced me to go to {b} for the long weekend.",
        ),
        "Which countries has {name} travelled to?",
        (("Portugal", "Norway"), ("Japan", "Mexico"), ("Greece", "Scotland"), ("Vietnam", "Iceland")),
    ),
    (
        (
            "I joined a {a} club near the river, we meet on Saturdays.",
            "A colleague got me into {b}, we go every Thursday evening.",
        ),
        "What sports does {name} do with other people?",
        (("rowing", "bouldering"), ("volleyball", "badminton"), ("football", "table tennis")),
    ),
)
# A question from the friend and its reply, adjacent: the reply holds the answer, the question the topic.
EXCHANGES = (
    ("Did you end up buying that {topic} you were looking at?",
     "I did! It was on sale for {value}, I couldn't resist.",
     "How much did {name} pay for the {topic}?",
     ("road bike", "espresso machine", "standing desk"), ("240 euros", "90 euros", "150 euros", "65 euros")),
    ("How was the concert on Friday?",
     "Incredible, {value} played for almost three hours.",
     "Which band did {name} see live?",
     ("concert",), ("The Paper Kites", "Black Lantern", "Moonfolk", "Sierra Vale")),
    ("Where did you end up going for your birthday dinner?",
     "That little {value} place by the harbour, the one with the blue door.",
     "Where did {name} celebrate their birthday?",
     ("birthday",), ("Lebanese", "Georgian", "Peruvian", "Sri Lankan")),
)  # fmt: skip
# One turn whose session date answers "when".
WHEN = (
    ("I ran my first half marathon yesterday, my legs are still shaking!",
     "When did {name} run a half marathon?"),
    ("We got engaged last weekend, on the beach at sunset!", "When did {name} get engaged?"),
    ("I finally passed my driving test this morning!", "When did {name} get a driving licence?"),
    ("My grandmother turned ninety today, the whole family came.",
     "When was {name}'s grandmother's 90th birthday?"),
)  # fmt: skip
# The same kind of outing in several months; the question names the month.
DATED = (
    "Went to see the {value} exhibition at the city museum today, worth every minute.",
    "What exhibition did {name} see in {month}?",
    ("Hokusai prints", "Bauhaus design", "Arctic photography", "Roman glass", "street art",
     "Van Gogh letters", "Mayan textiles", "early cinema posters", "Baltic amber", "Dutch still life"),
)  # fmt: skip
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December")  # fmt: skip


# Each question's template as the evidence words it (the `echoed` wording).
ECHOED = {
    "What is the name of {name}'s dog?": "What did {name} name the little dog adopted from the shelter?",
    "Where did {name} start a new job?": "Where did {name} start the new job on Monday?",
    "What is {name} allergic to?": "What did the doctor confirm {name} is allergic to after the tests?",
    "What evening course is {name} taking?": "What evening course did {name} sign up for at the community "
    "college?",
    "What does {name} grow on the balcony?": "What is {name}'s balcony full of, watered every morning?",
    "What did {name} give their mom for her birthday?": "What did {name} get their mom for her birthday?",
    "Which TV series has {name} been watching?": "What has {name} been binge-watching every night?",
    "Which language is {name} learning?": "What is {name} practicing with an app twenty minutes a day?",
    "What car did {name} buy?": "Which used car did {name} buy after selling the old car?",
    "Where does {name} help out for free?": "Where has {name} been volunteering every other Sunday?",
    "Which musical instruments does {name} play?": "Which lessons is {name} taking twice a week, and what "
    "did {name} pick up again after years?",
    "Which countries has {name} travelled to?": "Where did {name} spend a week in the summer, and where did "
    "the cousin convince {name} to go for the long weekend?",
    "What sports does {name} do with other people?": "Which club did {name} join near the river, and what "
    "did a colleague get {name} into?",
    "How much did {name} pay for the {topic}?": "How much was the {topic} on sale when {name} ended up "
    "buying it?",
    "Which band did {name} see live?": "Which band played for almost three hours at the concert {name} went "
    "to on Friday?",
    "Where did {name} celebrate their birthday?": "Where did {name} end up going for the birthday dinner?",
    "When did {name} run a half marathon?": "When did {name} run the first half marathon?",
    "When did {name} get engaged?": "When did {name} get engaged on the beach at sunset?",
    "When did {name} get a driving licence?": "When did {name} pass the driving test?",
    "When was {name}'s grandmother's 90th birthday?": "When did {name}'s grandmother turn ninety?",
    "What exhibition did {name} see in {month}?": "Which exhibition did {name} go to see at the city museum "
    "in {month}?",
}
WORDINGS = ("paraphrased", "echoed")


def _asked(template: str, wording: str, **values: str) -> str:
    """The question of `template`, in `wording` (one of `WORDINGS`)."""
    return (ECHOED[template] if wording == "echoed" else template).format(**values)


@dataclass(frozen=True)
class Question:
    """A question, its kind, the conversation it is asked in, and the events that answer it."""

    text: str
    kind: str
    conversation: str
    evidence_ids: tuple[str, ...]


@dataclass
class _Planned:
    """A turn waiting for a session: who says it, and the question it answers (key, text, kind)."""

    speaker: str
    content: str
    answers: tuple[str, str, str] | None = None
    follows: bool = False  # said right after the turn planned before it


def _event(event_id: str, at: datetime, content: str, conversation: str, session: str, speaker: str) -> Event:
    return Event(
        id=event_id,
        occurred_at=at,
        content=content,
        event_type="message",
        source=conversation,
        session_id=session,
        metadata={"speaker": speaker},
        content_sha256=hashlib.sha256(content.encode()).hexdigest(),
        source_file="conversation",
        source_line=1,
    )


def _in_passing(rng: random.Random, statement: str) -> str:
    """`statement` said in passing: after or before an aside, as people do."""
    aside = rng.choice(ASIDES)
    return f"{aside} {statement}" if rng.random() < 0.5 else f"{statement} {aside}"


def _plan(rng: random.Random, speakers: tuple[str, str], sessions: int, wording: str) -> list[list[_Planned]]:
    """The fact turns of each session: every fact kind for each speaker, spread over the sessions, with
    their questions in `wording`."""
    planned: list[list[_Planned]] = [[] for _ in range(sessions)]
    for speaker in speakers:
        for fact in SINGLE:
            value = rng.choice(fact.values)
            said = rng.randrange(sessions)
            key = f"single:{speaker}:{fact.asked}"
            question = (key, _asked(fact.asked, wording, name=speaker), "single")
            planned[said].append(_Planned(speaker, _in_passing(rng, fact.said.format(value=value)), question))
            for _ in range(2):
                planned[rng.randrange(sessions)].append(_Planned(speaker, fact.revisit))
        for (first, second), asked, values in MULTI:
            a, b = rng.choice(values)
            key = f"multi:{speaker}:{asked}"
            one, two = sorted(rng.sample(range(sessions), 2))
            question = (key, _asked(asked, wording, name=speaker), "multi")
            planned[one].append(_Planned(speaker, _in_passing(rng, first.format(a=a)), question))
            planned[two].append(_Planned(speaker, second.format(b=b), question))
        other = speakers[1 - speakers.index(speaker)]
        for asking, reply, asked, topics, values in EXCHANGES:
            topic = rng.choice(topics)
            question = (
                f"exchange:{speaker}:{asked}",
                _asked(asked, wording, name=speaker, topic=topic),
                "exchange",
            )
            exchange = planned[rng.randrange(sessions)]
            exchange.append(_Planned(other, asking.format(topic=topic), question))
            exchange.append(_Planned(speaker, reply.format(value=rng.choice(values)), question, follows=True))
        for said, asked in WHEN:
            key = f"when:{speaker}:{asked}"
            planned[rng.randrange(sessions)].append(
                _Planned(speaker, said, (key, _asked(asked, wording, name=speaker), "when"))
            )
    return planned


def history(
    sessions: int = 24, seed: int = 11, wording: str = "paraphrased"
) -> tuple[list[Event], list[Question]]:
    """Events and questions of one conversation per pair in `PAIRS`, `sessions` sessions each, the
    questions in `wording` (`WORDINGS`; the events are the same in each)."""
    rng = random.Random(seed)
    events: list[Event] = []
    questions: list[Question] = []
    for number, speakers in enumerate(PAIRS):
        conversation = f"chat-{speakers[0].lower()}-{speakers[1].lower()}"
        planned = _plan(rng, speakers, sessions, wording)
        evidence: dict[str, tuple[str, str, list[str]]] = {}
        day = START + timedelta(days=number)
        for session_number in range(sessions):
            day += timedelta(days=rng.randint(5, 16))
            session = f"{conversation}-s{session_number:02d}"
            turns = planned[session_number]
            # Each speaker goes to an exhibition in about a third of the sessions.
            for speaker in speakers:
                if rng.random() >= 1 / 3:
                    continue
                value = rng.choice(DATED[2])
                month = f"{MONTHS[day.month - 1]} {day.year}"
                # Two outings in one month both answer that month's question.
                asked = _asked(DATED[1], wording, name=speaker, month=month)
                question = (f"dated:{speaker}:{month}", asked, "dated")
                turns.append(_Planned(speaker, DATED[0].format(value=value), question))
            small = [_Planned(speakers[0], f"Hey {speakers[1]}! How have you been?")] + [
                _Planned(speakers[i % 2], f"{rng.choice(OPENERS)} {rng.choice(REMARKS)}")
                for i in range(1, rng.randint(10, 16))
            ]
            at = 0
            for turn in turns:
                at = at + 1 if turn.follows else rng.randrange(1, len(small) + 1)
                small.insert(at, turn)
            for position, turn in enumerate(small):
                event_id = f"{session}-t{position:02d}"
                at = day + timedelta(minutes=2 * position)
                events.append(_event(event_id, at, turn.content, conversation, session, turn.speaker))
                if turn.answers is not None:
                    key, asked, kind = turn.answers
                    evidence.setdefault(key, (asked, kind, []))[2].append(event_id)
        questions += [
            Question(asked, kind, conversation, tuple(ids)) for asked, kind, ids in evidence.values()
        ]
    return events, questions
