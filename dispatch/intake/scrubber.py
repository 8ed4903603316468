"""Removes personal data from ticket text before it is shown to the public (政务公开).

Masked: names (a full name becomes 张某; 张先生 / 李女士 are already anonymous and stay), mobile and
landline numbers, ID-card numbers (and other long digit runs such as bank cards), licence plates,
e-mail addresses, and precise addresses (the house, building, unit and room numbers; the road or the
estate stays, so the public still sees where the matter was). A ticket's own caller name and phone
are masked wherever they appear, whatever the patterns say.

Pattern-based: it cannot know every name. It errs on the side of masking, and the disclosure only
ever shows tickets the operator and the citizen did not mark private.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

# The common single-character surnames (about 95 % of the population) and the compound ones.
SURNAMES_1 = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任"
    "沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫"
    "孔向汤常温康施文牛樊葛邢安齐易乔伍庞颜倪庄聂章鲁岳翟殷詹申欧耿关兰焦俞左柳甘祝包宁尚符舒阮柯纪梅童"
    "凌毕单季裴霍涂成苗谷盛曲翁冉骆蓝路游辛靳管柴蒙鲍华喻祁蒲房滕屈饶解牟艾尤阳时穆农司卓古吉缪简车项连芦"
    "麦褚娄窦戚岑景党宫费卜冷晏席卫米柏宗瞿桂全佟应臧闵苟邬边卞姬师和仇栾隋商刁沙荣巫寇桑郎甄丛仲虞敖巩明"
    "佘池查麻苑迟邝"
)
SURNAMES_2 = ("欧阳", "司马", "诸葛", "上官", "东方", "慕容", "皇甫", "令狐", "尉迟", "公孙", "长孙", "夏侯")
# Characters that do not occur in given names but do right after a name in running text.
NOT_IN_NAMES = (
    "的了在是和与及向对把被给从到于也都就还又很说称讲问要想来去反映投诉举报表示希望请求家里门前后上下中内外"
    "里边旁路街道巷村镇乡县市省区楼栋号室单元层户物业公司局委会所站队部厅院校店厂场馆园社人员们等位个这那"
    "此其有没无不已曾刚正将每各某先生女士师傅姨爷叔婆奶妈老板经理主任电话手机码姓名今昨日月年时分多少几百千万"
    "共约近该我你他她它啊吗呢吧呀哦嗯说讲打拨联系反映投诉"
)
TITLES = (
    "先生|女士|小姐|师傅|阿姨|大爷|大妈|大叔|大姐|大哥|老师|医生|护士|经理|老板|主任|书记|村长|组长|队长|校长"
    "|所长|局长|站长|同学|奶奶|爷爷|叔叔|婆婆|老人"
)
# Words after which a person's name follows (我叫张三, 联系人：李四, 业主王五 …).
NAME_CUES = (
    "我叫|名叫|叫做|他叫|她叫|名字是|名字叫|本人|姓名|联系人|投诉人|举报人|反映人|来电人|来信人|申请人|当事人"
    "|市民|居民|业主|户主|租户|房东|村民|患者|病人|家长|员工|职工|工人|司机|老人|学生|孩子|儿子|女儿|丈夫|妻子"
    "|爱人|母亲|父亲|邻居|负责人|法人|网格员|快递员|外卖员"
    # what a department's reply does with a person: 已联系李建国, 电话告知张某某 …
    "|联系了|联系|通知了|通知|告知|约见|约谈|致电|转告|回复|答复|走访|询问|见到|找到"
)
# Words right after a name in a reply (李建国电话…, 张三的手机…, 王五家中…).
AFTER_NAME = "(?:的)?(?:电话|手机|联系电话|联系方式|号码|身份证|住址|家中|家里|本人)"
PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
CN_DIGITS = "一二三四五六七八九十百零〇两"

_SURNAME = "(?:" + "|".join(SURNAMES_2) + f"|[{SURNAMES_1}])"
_GIVEN_CHAR = f"(?:(?![{NOT_IN_NAMES}])[\u4e00-\u9fff])"
_NUM = rf"(?:\d+(?:-\d+)*|[A-Za-z]\d*|[{CN_DIGITS}]+)"


@dataclass
class Scrubbed:
    text: str
    # (kind, original) of everything masked, in the order found: for tests and for the audit.
    found: list[tuple[str, str]] = field(default_factory=list)


def _keep(prefix: int) -> Callable[[str], str]:
    """Keep the first `prefix` characters, turn every later letter or digit into *."""

    def mask(value: str) -> str:
        return value[:prefix] + re.sub(r"[0-9A-Za-z]", "*", value[prefix:])

    return mask


def _mask_numbers(value: str) -> str:
    """18号3栋 -> *号*栋: every number (Arabic, Chinese or a letter) before a unit word."""
    return re.sub(rf"[0-9A-Za-z{CN_DIGITS}]+(?:-[0-9]+)*", "*", value)


# (kind, pattern, replacement of the whole match or of the group "x"), applied in this order: the
# long digit runs first (an ID contains a phone-like run), names last (after the addresses).
_RULES: list[tuple[str, re.Pattern[str], Callable[[str], str]]] = [
    (
        "email",
        re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+"),
        lambda v: "***@" + v.split("@")[1],
    ),
    (
        "id_card",
        re.compile(
            r"(?<![0-9A-Za-z])[1-9]\d{5}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[0-9Xx]"
            r"(?![0-9A-Za-z])"
            r"|(?<![0-9A-Za-z])[1-9]\d{7}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}(?![0-9A-Za-z])"
        ),
        _keep(0),
    ),
    ("long_number", re.compile(r"(?<![0-9])\d(?:[ -]?\d){11,22}(?![0-9])"), _keep(0)),
    ("mobile", re.compile(r"(?<![0-9])(?:\+?86[ -]?)?1[3-9]\d(?:[ -]?\d{4}){2}(?![0-9])"), _keep(3)),
    ("landline", re.compile(r"(?<![0-9])0\d{2,3}[- ]?\d{7,8}(?![0-9])"), _keep(4)),
    (
        "phone",
        re.compile(r"(?:电话|手机|座机|联系方式|号码|打|拨)(?:是|为|：|:)?\s*(?P<x>\d{7,8})(?![0-9])"),
        _keep(0),
    ),
    (
        "plate",
        re.compile(
            rf"[{PROVINCES}][A-HJ-NP-Za-hj-np-z][·•・ ]?(?:[A-HJ-NP-Z0-9a-hj-np-z]{{5,6}}|"
            r"[A-HJ-NP-Z0-9a-hj-np-z]{4}[挂学警港澳])(?![A-Za-z0-9])"
        ),
        _keep(2),
    ),
    ("address", re.compile(r"(?<![0-9])\d{1,3}-\d{1,3}-\d{2,4}(?![0-9-])"), _keep(0)),
    (
        "address",
        re.compile(
            rf"(?<![月0-9A-Za-z{CN_DIGITS}]){_NUM}(?:号院|号楼|号|栋|幢|座|单元|楼|层|室|户|弄)"
            rf"(?:{_NUM}(?:号院|号楼|号|栋|幢|座|单元|楼|层|室|户|弄))*"
            r"(?!线|文件|令|窗口|台风|机|电池|字|码|样)"
        ),
        _mask_numbers,
    ),
    ("address", re.compile(rf"(?<=村|社|区){_NUM}(?:组|社|队)"), _mask_numbers),
    # A room number right after the building or unit: 3栋2单元501, B座1204.
    ("address", re.compile(r"(?<=[栋幢座元楼])\d{2,4}(?![0-9年月日元个人岁块米分点次号])"), _keep(0)),
    (
        "name",
        re.compile(rf"(?:{NAME_CUES})(?:是|为|：|:|\s)*(?P<x>{_SURNAME}{_GIVEN_CHAR}{{1,2}})"),
        lambda v: _surname(v) + "某",
    ),
    (
        "name",
        re.compile(rf"(?P<x>{_SURNAME}{_GIVEN_CHAR}{{1,2}})(?=(?:{TITLES}))"),
        lambda v: _surname(v) + "某",
    ),
    (  # a name before 电话/家中 …, where a name can start: not inside a word, or after a place
        "name",
        re.compile(
            rf"(?:(?<![\u4e00-\u9fff])|(?<=[，,。；;：:、\s区村组栋室]))"
            rf"(?P<x>{_SURNAME}{_GIVEN_CHAR}{{1,2}})(?={AFTER_NAME})"
        ),
        lambda v: _surname(v) + "某",
    ),
]


def _surname(name: str) -> str:
    return name[:2] if name[:2] in SURNAMES_2 else name[:1]


def _apply(result: Scrubbed, kind: str, pattern: re.Pattern[str], mask: Callable[[str], str]) -> None:
    def replace(match: re.Match[str]) -> str:
        whole = match.group(0)
        if "x" not in pattern.groupindex or match.group("x") is None:
            result.found.append((kind, whole))
            return mask(whole)
        start, end = match.span("x")
        start, end = start - match.start(), end - match.start()
        result.found.append((kind, whole[start:end]))
        return whole[:start] + mask(whole[start:end]) + whole[end:]

    result.text = pattern.sub(replace, result.text)


def scrub(text: str | None, names: Iterable[str | None] = (), phones: Iterable[str | None] = ()) -> Scrubbed:
    """`text` with personal data masked; `names` and `phones` (the ticket's own caller) are masked
    wherever they occur."""
    result = Scrubbed(text or "")
    for name in sorted({n.strip() for n in names if n and n.strip()}, key=len, reverse=True):
        if name in result.text:
            result.found.append(("name", name))
            result.text = result.text.replace(name, _surname(name) + "某" if len(name) > 1 else "某")
    for phone in {p.strip() for p in phones if p and len(p.strip()) >= 5}:
        if phone in result.text:
            result.found.append(("phone", phone))
            result.text = result.text.replace(phone, _keep(0)(phone))
    for kind, pattern, mask in _RULES:
        _apply(result, kind, pattern, mask)
    return result


def scrub_text(text: str | None, names: Iterable[str | None] = (), phones: Iterable[str | None] = ()) -> str:
    return scrub(text, names, phones).text
