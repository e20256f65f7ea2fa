"""The extractive composer: cited answers from retrieved passages and registry fields, no LLM.

Tiny local LLMs write poor Japanese, so the embedded default never invents wording: every
sentence is a template from ``prompts/answer_wording.yaml`` filled with fields of one passage,
or a sentence copied from a passage, and carries that passage's citation number.
"""

from __future__ import annotations

import re
from typing import Any

from assistant._types import Citation, Draft, Sentence
from prompts import PromptSpec
from prompts import load as load_prompt
from retrieval._types import Language, Passage
from retrieval.sparse import CharBigramTokenizer

#: what a question asks about -> the procedure fields that answer it
_ASKS = {
    "attachments": re.compile(r"書類|必要な?もの|持ち物|持って|添付|document|bring|need to submit|paper", re.I),
    "online": re.compile(
        r"オンライン|電子申請|ネット|インターネット|マイナポータル|e-?gov|online|internet|electronic", re.I
    ),
    "fee": re.compile(r"手数料|費用|料金|お金|いくら|有料|無料|fee|cost|charge|how much|free", re.I),
    "office": re.compile(r"どこ|窓口|提出先|申請先|届け?先|役所|役場|where|office|submit to|apply at", re.I),
    "law": re.compile(r"法律|法令|根拠|条文|law|legal basis|act\b", re.I),
    "period": re.compile(r"期間|何日|どのくらい|日数|かかる|how long|processing time|take", re.I),
}

#: what the shipped data never holds: a question about it is refused, with a pointer to the
#: related procedure. The survey says whether a fee exists, never how much; it has no dates,
#: hours or phone numbers; and no answer may be a legal or tax judgment (governance rule).
_UNSUPPORTED = {
    "amount": re.compile(r"いくら|何円|金額|支給額|月額|相場|how much|what is the (?:fee|amount|cost)", re.I),
    "schedule": re.compile(
        r"何曜日|何時|何月|何日に|何日以内|期限|営業時間|開庁時間|受付時間|締め?切り|いつまで"
        r"|いつ.{0,6}(?:振り?込|支給|届|もらえ)|空き|空いて|待ち時間|混雑"
        r"|what time|opening hours|which day|which month|deadline|vacanc|waiting time|collection day"
        r"|when (?:will|do|does|is) .*(?:paid|arrive|open)",
        re.I,
    ),
    "contact": re.compile(r"電話番号|メールアドレス|phone number|e-?mail address", re.I),
    "personal": re.compile(
        r"私の(?:申請|審査|状況)|審査状況|(?:もう|まだ).{0,12}(?:許可|認定|決定|受理)され"
        r"|my application status|status of my|has my .{0,40} been|is my .{0,40} (?:approved|granted|accepted)",
        re.I,
    ),
    "judgment": re.compile(
        r"勝て(?:ます|る)|訴え(?:たら|れば)|違法|合法|どちらが(?:得|いい|良い|有利)|どっちが|得(?:です)?か|損(?:です)?か"
        r"|病気ですか|診断|おすすめ|オススメ|recommend"
        r"|is it better|which is better|better for me|can i sue|will i win|is it (?:il)?legal"
        r"|do i have (?:the )?(?:flu|covid)",
        re.I,
    ),
}

_EN_VALUES = {
    "実施済": "available",
    "一部実施済": "partly available",
    "未実施": "not available",
    "適用除外": "exempt from online filing",
    "その他": "other arrangements",
    "手数料等無し": "no fee",
    "手数料等有り": "a fee is charged",
    "国民等": "individuals",
    "民間事業者等": "businesses",
    "国民等、民間事業者等": "individuals and businesses",
    "添付書類なし": "no attachments",
}

_SENTENCE_SPLIT = re.compile(r"(?<=[。！？!?])\s*|\n+|(?<=\.)\s+(?=[A-Z])")


def asked_fields(question: str) -> set[str]:
    return {name for name, pattern in _ASKS.items() if pattern.search(question)}


def unsupported_intent(question: str) -> str | None:
    """The kind of fact or judgment a question asks for that no shipped source holds, if any."""
    for name, pattern in _UNSUPPORTED.items():
        if pattern.search(question):
            return name
    return None


def _strip(value: Any) -> str:
    text = str(value or "").strip()
    return re.sub(r"^\s*[0-9]+(?:-[0-9]+)?\s+", "", text)


def _items(value: Any) -> list[str]:
    return [_strip(v) for v in str(value or "").split(";") if v.strip()]


class ExtractiveComposer:
    name = "extractive"

    def __init__(self, wording: PromptSpec | None = None, *, max_passages: int = 3, alt_margin: float = 0.03) -> None:
        self.wording = wording or load_prompt("answer_wording")
        self.max_passages = max_passages
        self.alt_margin = alt_margin
        self._tokenizer = CharBigramTokenizer()

    # -- selection ------------------------------------------------------------------------

    def select(self, passages: list[Passage]) -> list[Passage]:
        """The top passage, and variants of it a citizen should see too.

        A variant is of the same kind, scores within ``alt_margin`` of the top passage's dense
        cosine, and shares at least half of its title's bigrams with the top title (一般旅券の発給の
        申請 at the prefecture vs. at a consulate), so unrelated near-ties are not listed.
        """
        if not passages:
            return []
        top = passages[0]
        top_dense = top.raw_scores.get("dense")
        top_terms = self._title_terms(top.title)
        chosen = [top]
        for p in passages[1:]:
            if len(chosen) >= self.max_passages:
                break
            dense = p.raw_scores.get("dense")
            if p.kind != top.kind or top_dense is None or dense is None or dense < top_dense - self.alt_margin:
                continue
            terms = self._title_terms(p.title)
            if terms and len(terms & top_terms) / len(terms) >= 0.5:
                chosen.append(p)
        return chosen

    def _title_terms(self, title: str) -> set[str]:
        return {t for t in self._tokenizer.terms(title) if t.startswith(("b:", "w:"))}

    # -- wording --------------------------------------------------------------------------

    def phrase(self, language: Language, key: str, **values: Any) -> str:
        return self.wording.text(language, key, **values).strip()

    def _value(self, language: Language, value: str) -> str:
        if language == "en":
            return _EN_VALUES.get(value, value)
        return value

    def _procedure(self, p: Passage, n: int, language: Language, asked: set[str], primary: bool) -> list[Sentence]:
        f: dict[str, Any] = p.payload.get("fields") or {}
        out: list[Sentence] = []

        def say(key: str, **values: Any) -> None:
            out.append(Sentence(text=self.phrase(language, key, **values), citations=[n]))

        law = " ".join(x for x in [f.get("法令名"), f.get("根拠条項号")] if x)
        if not primary:
            say("procedure_related", title=p.title)
            return out
        if law:
            say("procedure_law", title=p.title, law=law)
        else:
            say("procedure_title", title=p.title)
        # 手続の受け手 "国民等" means the state hands something to the citizen: no office to file at
        receiver = _strip(f.get("手続の受け手"))
        office = "、".join(_items(f.get("申請を提出する機関"))) or (
            receiver if receiver and receiver not in _EN_VALUES else ""
        )
        if office:
            say("procedure_office", office=office)
        online = _strip(f.get("オンライン化の実施状況"))
        if online and (not asked or "online" in asked or "office" in asked):
            system = f.get("情報システム(申請)")
            online = self._value(language, online)
            say(
                "procedure_online",
                online=f"{online}（{system}）"
                if system and language == "ja"
                else f"{online} ({system})"
                if system
                else online,
            )
        attachments = _items(f.get("申請時に添付させる書類"))
        # "その他の添付書類" alone tells a citizen nothing unless they asked what to bring
        informative = any(a != "その他の添付書類" for a in attachments)
        if attachments and ("attachments" in asked or (not asked and informative)):
            say("procedure_attachments", attachments="、".join(self._value(language, a) for a in attachments))
        fee = _strip(f.get("手数料等の納付有無"))
        if fee and ("fee" in asked or fee == "手数料等有り"):
            say("procedure_fee", fee=self._value(language, fee))
        period = f.get("処理期間(非オンライン)") or f.get("処理期間(オンライン)")
        if period and "period" in asked:
            say("procedure_period", period=period)
        return out

    def _garbage(self, p: Passage, n: int, language: Language, primary: bool) -> list[Sentence]:
        item = p.payload.get("item") or p.title
        category = p.payload.get("category") or ""
        notice = p.payload.get("notice") or ""
        out = [Sentence(text=self.phrase(language, "garbage_category", item=item, category=category), citations=[n])]
        if notice and primary:
            out.append(Sentence(text=self.phrase(language, "garbage_notice", notice=notice), citations=[n]))
        return out

    def _document(self, p: Passage, n: int, question: str, primary: bool) -> list[Sentence]:
        """A chunk of an ingested document: copy the sentences that share most terms with the question."""
        q_terms = {t for t in self._tokenizer.terms(question) if t.startswith(("b:", "w:"))}
        sentences = [s.strip() for s in _SENTENCE_SPLIT.split(p.text) if s and len(s.strip()) > 4]
        if not sentences:
            return []
        scored = sorted(
            range(len(sentences)),
            key=lambda i: -len(q_terms & set(self._tokenizer.terms(sentences[i]))),
        )
        keep = sorted(scored[: 2 if primary else 1])  # keep document order for readability
        return [Sentence(text=sentences[i], citations=[n]) for i in keep]

    # -- composition ----------------------------------------------------------------------

    def compose(self, question: str, language: Language, passages: list[Passage]) -> Draft:
        chosen = self.select(passages)
        asked = asked_fields(question)
        sentences: list[Sentence] = []
        citations: list[Citation] = []
        for p in chosen:
            n = len(citations) + 1  # citation numbers stay contiguous even if a passage yields nothing
            primary = n == 1 or p.kind == "garbage"
            if p.kind == "procedure":
                made = self._procedure(p, n, language, asked, primary)
            elif p.kind == "garbage":
                made = self._garbage(p, n, language, primary)
            else:
                made = self._document(p, n, question, primary)
            if made:
                sentences.extend(made)
                citations.append(citation_for(p, n))
        return Draft(sentences=sentences, citations=citations, mode="extractive")

    def refusal(self, language: Language, contact: str, *, pointer: Passage | None = None, reason: str = "") -> Draft:
        """'I don't know' plus where to ask; a loosely related passage is offered only as a pointer."""
        sentences = [
            Sentence(text=self.phrase(language, "refusal")),
            Sentence(text=self.phrase(language, "contact_at", contact=contact)),
        ]
        citations: list[Citation] = []
        if pointer is not None:
            sentences.append(
                Sentence(text=self.phrase(language, "refusal_pointer", title=pointer.title), citations=[1])
            )
            citations.append(citation_for(pointer, 1))
        notices = [reason] if reason else []
        return Draft(sentences=sentences, citations=citations, mode="refusal", refused=True, notices=notices)


def citation_for(p: Passage, n: int) -> Citation:
    source = str(p.payload.get("source_title") or p.source)
    return Citation(id=n, doc_id=p.id, title=p.title, source=source, url=p.url, score=round(p.score, 4))


def render(draft: Draft, language: Language) -> str:
    """Sentences with their citation markers: 'text[1]' (ja) / 'text [1]' (en)."""
    parts = []
    for s in draft.sentences:
        marks = "".join(f"[{c}]" for c in s.citations)
        if not marks:
            parts.append(s.text if language != "ja" or s.text.endswith(("。", "！", "？")) else s.text + "。")
        elif language == "ja":
            parts.append(_attach_ja(s.text, marks))
        else:
            parts.append(_attach_en(s.text, marks))
    return ("" if language == "ja" else " ").join(parts)


def _attach_ja(text: str, marks: str) -> str:
    if text.endswith("。"):
        return text[:-1] + marks + "。"
    return text + marks + "。"


def _attach_en(text: str, marks: str) -> str:
    if text.endswith("."):
        return text[:-1] + f" {marks}."
    return f"{text} {marks}."
