"""The month's topics: clusters of what citizens asked about, each labelled by its most typical words
and one sample request; topics rising against last month; and 每月一题 candidates.

Texts are cut into words by the one jieba tokenizer (core.chinese), weighted by TF-IDF, and grouped by
k-means (scikit-learn, MiniBatchKMeans for large months); k grows with the month's volume. A topic's
label is the words nearest its centre; its sample is the request nearest it. Last month's tickets are
put into this month's topics by the same model, so "rising" compares like with like.

每月一题 (one problem a month for the city to solve at its root): a topic among the largest that
recurs (last month had at least `RECURRING_SHARE` of this month's count) and spans departments (at
least two departments each hold `SPAN_SHARE` of its dispatched tickets).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from core.chinese import words

# Words that say nothing about the matter (how callers speak, not what about).
STOPWORDS = frozenset(
    [
        "我",
        "你",
        "他",
        "她",
        "我们",
        "你们",
        "他们",
        "的",
        "了",
        "是",
        "在",
        "有",
        "和",
        "就",
        "都",
        "也",
        "还",
        "要",
        "想",
        "请问",
        "一下",
        "这个",
        "那个",
        "这边",
        "那边",
        "什么",
        "怎么",
        "为什么",
        "能",
        "可以",
        "没有",
        "一直",
        "已经",
        "问题",
        "情况",
        "反映",
        "希望",
        "请",
        "尽快",
        "处理",
        "谢谢",
        "你好",
        "现在",
        "时候",
        "这样",
        "那里",
        "这里",
        "一个",
        "好几",
        "很",
        "太",
        "非常",
        "到",
        "给",
        "让",
        "被",
        "把",
        "对",
        "说",
        "去",
        "来",
        "吗",
        "呢",
        "吧",
        "啊",
        "呀",
        "么",
        "着",
        "过",
        "又",
        "再",
        "但",
        "但是",
        "因为",
        "所以",
        "如果",
    ]
)
RECURRING_SHARE = 0.3
SPAN_SHARE = 0.2
_KEEP = re.compile(r"^[\u4e00-\u9fffA-Za-z]{2,}$")


def tokens(text: str) -> list[str]:
    return [w for w in words(text) if _KEEP.match(w) and w not in STOPWORDS]


@dataclass
class Topic:
    label: str  # the most typical words
    size: int
    sample: str
    numbers: list[str]  # tickets of the topic (sample first)
    previous: int = 0  # last month's tickets that fall in this topic
    departments: list[tuple[str, int]] = field(default_factory=list)  # (department name, tickets)

    @property
    def growth(self) -> float | None:
        return round(self.size / self.previous, 2) if self.previous else None


@dataclass(frozen=True)
class Doc:
    number: str
    text: str
    department: str | None


def cluster_count(n: int) -> int:
    """√(n/2) topics (the usual rule of thumb), between 2 and 40: 24 requests → 3, 350 → 13."""
    return max(2, min(40, round(math.sqrt(n / 2))))


def month_topics(docs: list[Doc], previous: list[Doc], top: int = 10) -> list[Topic]:
    """The month's largest topics, each with last month's count for the same topic."""
    if len(docs) < 4:
        return []
    from sklearn.cluster import KMeans, MiniBatchKMeans
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(tokenizer=tokens, lowercase=False, token_pattern=None, min_df=2, max_df=0.5)
    try:
        matrix = vectorizer.fit_transform([d.text for d in docs])
    except ValueError:  # no word occurs twice: nothing to group
        return []
    k = min(cluster_count(len(docs)), matrix.shape[0] - 1)
    # Full k-means groups better; past 20 000 requests the mini-batch variant keeps the report fast.
    if matrix.shape[0] <= 20_000:
        model = KMeans(n_clusters=k, random_state=0, n_init=4).fit(matrix)
    else:
        model = MiniBatchKMeans(n_clusters=k, random_state=0, n_init=3, batch_size=4096).fit(matrix)
    labels = model.labels_
    before = (
        Counter(model.predict(vectorizer.transform([d.text for d in previous]))) if previous else Counter()
    )
    terms = np.array(vectorizer.get_feature_names_out())
    topics = []
    for cluster in range(k):
        members = np.flatnonzero(labels == cluster)
        if len(members) < 2:
            continue
        centre = model.cluster_centers_[cluster]
        nearest = members[np.argmax(matrix[members] @ centre)]
        label = "、".join(terms[np.argsort(centre)[::-1][:4]])
        departments = Counter(docs[i].department for i in members if docs[i].department).most_common()
        numbers = [docs[nearest].number] + [docs[i].number for i in members if i != nearest]
        topics.append(
            Topic(label, len(members), docs[nearest].text, numbers, before.get(cluster, 0), departments)
        )
    topics.sort(key=lambda t: -t.size)
    return topics[:top] if top else topics


def rising(topics: list[Topic], min_size: int = 5, factor: float = 1.5) -> list[Topic]:
    """Topics at least `factor` times as large as last month (or new, with min_size tickets)."""
    up = [t for t in topics if t.size >= min_size and (t.previous == 0 or t.size >= factor * t.previous)]
    return sorted(up, key=lambda t: -(t.size - t.previous))


def one_problem_a_month(topics: list[Topic], top: int = 3) -> list[Topic]:
    """每月一题 candidates: large, recurring topics that span departments."""
    out = []
    for t in topics:
        dispatched = sum(n for _, n in t.departments)
        spread = [d for d, n in t.departments if dispatched and n / dispatched >= SPAN_SHARE]
        if t.previous >= RECURRING_SHARE * t.size and len(spread) >= 2:
            out.append(t)
    return out[:top]
