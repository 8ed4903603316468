"""The router alone on the utterances of batches 1-4 that no knowledge-base entry answers
(tests/knowledge_base/data/heldout_queries*.jsonl, heldout3_*, heldout4_*): complaints, help requests,
policy questions, complex matters, emergencies and calls without a request, and on the lists below.

Not an honest measure: the old routing table grew from probes and batches written by the same hands
(phrases of a batch called untuned were added to the table after it was measured), and the trained
router now learns from these batches (dispatch.router_model.TUNING_QUERIES). The figures here are
in-sample; the unseen measure is heldout5 in tests/knowledge_base/test_heldout.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dispatch.routing import Router

DATA = Path(__file__).resolve().parents[1] / "knowledge_base" / "data"
QUERIES = (
    "heldout_queries.jsonl",
    "heldout_queries_2.jsonl",
    "heldout3_queries.jsonl",
    "heldout4_queries.jsonl",
)
EMERGENCY = ("应急处突", "转110", "转119", "转120")


@pytest.fixture(scope="module")
def router() -> Router:
    return Router()


@pytest.fixture(scope="module")
def unanswered() -> list[dict[str, Any]]:
    rows = [
        json.loads(line)
        for name in QUERIES
        for line in (DATA / name).read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    return [q for q in rows if q["expected_kb_id"] is None]


def test_category_and_department_floor(router: Router, unanswered: list[dict[str, Any]]) -> None:
    results = [(q, router.classify(q["text"])) for q in unanswered]
    category = sum(c.category == q["expected_category"] for q, c in results) / len(results)
    department = sum(c.department == q["expected_department"] for q, c in results) / len(results)
    wrong = [
        (q["text"], c.category, c.department) for q, c in results if c.category != q["expected_category"]
    ]
    assert category >= 0.88, wrong
    assert department >= 0.88


def test_every_emergency_is_recognised_exactly(router: Router, unanswered: list[dict[str, Any]]) -> None:
    emergencies = [q for q in unanswered if q["expected_category"] in EMERGENCY]
    assert len(emergencies) >= 25
    missed = [
        (q["text"], router.classify(q["text"]).category)
        for q in emergencies
        if router.classify(q["text"]).category != q["expected_category"]
    ]
    assert missed == []


def test_false_alarms_on_ordinary_calls_are_rare(router: Router, unanswered: list[dict[str, Any]]) -> None:
    # one is tolerated: "桥头那段路塌了一小块" was written as a repair request, the router (like the
    # samples, where a road collapse is 应急处突) sends it to the emergency desk
    ordinary = [q for q in unanswered if q["expected_category"] not in EMERGENCY]
    alarms = [q["text"] for q in ordinary if router.classify(q["text"]).category in EMERGENCY]
    assert len(alarms) <= max(1, len(ordinary) // 50), alarms


# Emergencies said calmly, indirectly or in everyday words (written for this test).
CALM_EMERGENCIES = [
    ("我妈在浴室里滑倒了，现在人迷迷瞪瞪的，头上起了个大包", "转120"),
    ("孩子一直咳嗽喘不上来，嘴唇发乌", "转120"),
    ("我爷爷刚刚吃着饭突然就不会说话了，口水直流", "转120"),
    ("老婆大出血，刚生完孩子在家里", "转120"),
    ("同事在车间突然晕倒，抽了几下就不动了", "转120"),
    ("我朋友喝酒喝得不省人事，怎么推都推不醒", "转120"),
    ("大夏天在地里干活的老人中暑晕倒了", "转120"),
    ("我爸被电动车撞了，躺在路边起不来", "转120"),
    ("我家孩子误吞了一颗纽扣电池", "转120"),
    ("我老公切菜把手指头切掉了", "转120"),
    ("楼上邻居家往下滴水还冒烟，家里没人", "转119"),
    ("小孩的手被卷进电梯扶手里了", "转120"),
    ("有人被困在倒塌的房子下面了", "转119"),
    ("工厂的锅炉房着火了，里面还有人", "转119"),
    ("车子掉进河里了，人还在车里", "转119"),
    ("有个醉汉拿着酒瓶子在街上见人就砸", "转110"),
    ("我刚取完钱就被人跟着，他一直跟到我家楼下", "转110"),
    ("孩子在网上被人骗了，让他拿家里的钱", "转110"),
    ("家门被人撬开了，家里翻得乱七八糟，小偷可能还没走", "转110"),
    ("我被人关在一个房子里不让出去，我偷偷打的电话", "转110"),
    ("有人在村里开着车撞人", "转110"),
    ("我们那一片的路面突然往下沉，出现一个大窟窿", "应急处突"),
    ("加油站旁边一辆车在漏油，地上一大滩", "应急处突"),
    ("学校门口聚了一百多个家长，堵着校门要说法", "应急处突"),
    ("楼顶的广告牌被风刮得摇摇晃晃，快掉下来了", "应急处突"),
    ("我姥爷在院子里晕过去了，掐人中也没用", "转120"),
    ("我老公突然一头栽在桌子上，叫了半天没反应", "转120"),
    ("孩子刚才喝水呛着了，现在脸都憋青了", "转120"),
    ("我妈血压一下子到两百多，头疼得要炸了，还吐", "转120"),
    ("有个老太太在超市门口躺着起不来，腿好像断了", "转120"),
    ("我儿子骑车摔了，胳膊骨头都露出来了", "转120"),
    ("我老婆要生了，肚子一阵一阵疼，羊水都流出来了", "转120"),
    ("我爸心脏病又犯了，药吃了不管用", "转120"),
    ("工地上有人被钢筋扎穿了腿", "转120"),
    ("邻居家老人煤气中毒了，人已经迷迷糊糊", "转120"),
    ("厨房里的燃气灶着起来了，火关不掉", "转119"),
    ("我们楼顶上的太阳能热水器冒黑烟，还有火", "转119"),
    ("有个孩子掉进下水道井里了", "转119"),
    ("隔壁工厂发生爆炸了，声音特别大，好多烟", "转119"),
    ("电瓶车在楼道里烧起来了，烟往楼上走", "转119"),
    ("我把钥匙锁屋里了，孩子在里面睡觉，灶上还烧着水", "转119"),
    ("有人在我们小区挨家挨户撬门", "转110"),
    ("刚才有两个人骑着摩托把一个女的包抢了", "转110"),
    ("我前男友一直在我家楼下堵我，说不跟他复合就弄死我", "转110"),
    ("ktv里有人打起来了，酒瓶子都砸碎了", "转110"),
    ("一个陌生男人把我家孩子从学校门口抱走了", "转110"),
    ("有人往我家窗户上扔石头，玻璃都砸了", "转110"),
    ("路边有个男的对着小女孩脱裤子", "转110"),
    ("我老妈接到电话说我出事了，她已经往对方卡里打了五万", "转110"),
    ("我家八十多岁的老爷子走失了，穿着蓝衣服，有点老年痴呆", "转110"),
    ("我们村的山塘水满了，坝体裂了好长一条缝", "应急处突"),
    ("小区门口的变压器冒火花，电线掉在地上", "转119"),
    ("工厂门口聚了二三百个工人，把大门堵死了", "应急处突"),
    ("高速路口有辆大货车侧翻了，车上的东西洒了一地，冒白烟", "应急处突"),
    ("暴雨下了一天，我们小区地下车库进水了，水已经淹到车门了", "应急处突"),
    ("我想问一下，我妈刚才吃饭的时候筷子突然拿不住了，说话也不太利索，这是怎么回事", "转120"),
    ("我爸刚才还好好的，现在叫他他就哼哼，眼睛也不睁", "转120"),
    ("孩子从床上摔下来，后脑勺着地，现在老想睡觉还吐了", "转120"),
    ("我怀孕的老婆羊水好像破了", "转120"),
    ("我家老人糖尿病，现在浑身冒冷汗，人都迷糊了", "转120"),
    ("有个小伙子在篮球场上突然倒下去了", "转120"),
    ("我对象吃了一整瓶安眠药", "转120"),
    ("工厂里有个工人手被机器绞进去了", "转120"),
    ("我爸被蜂蛰了，脸肿得厉害，喘气困难", "转120"),
    ("隔壁屋里一股烧焦的味道，门关着没人应", "转119"),
    ("楼道里的电动车好像在冒火星", "转119"),
    ("我家小孩的头卡在防盗窗里拔不出来了", "转119"),
    ("有个人坐在楼顶边上，看着要往下跳", "转110"),
    ("车库里有辆车起火了", "转119"),
    ("我被锁在阳台上了，孩子一个人在屋里开着煤气灶", "转119"),
    ("刚才有个人冒充警察给我打电话，让我往安全账户转钱，我已经转了两万", "转110"),
    ("我邻居家天天传出打孩子的声音，今天孩子哭得特别惨", "转110"),
    ("我八十岁的老父亲出门买菜，到现在五个小时了还没回来，他有点糊涂", "转110"),
    ("有几个人在我家门口泼油漆，还写了欠债还钱", "转110"),
    ("村里有人在河里电鱼，我去劝还被他们推倒了", "转110"),
    ("我儿子被一帮人围着打，在学校后门", "转110"),
    ("有个男的开车把人撞了就跑了", "转110"),
    ("我前夫喝了酒在楼下砸我的车，还说要杀了我", "转110"),
    ("小区门口的大树被风吹倒了，压住了一辆车和旁边的电线", "应急处突"),
    ("河堤上有个地方一直往外冒水，越来越大", "应急处突"),
    ("我们这边的山体滑坡把路埋了，有车被困在里面", "转119"),
    ("工地的基坑旁边的地面裂开了，旁边的房子在往下沉", "应急处突"),
    ("几十个业主把售楼部围了，情绪很激动，有人要动手", "应急处突"),
    ("一辆拉化学品的罐车翻在路边，有刺鼻的味道", "应急处突"),
    ("楼里的煤气管道好像破了，一股臭鸡蛋味", "应急处突"),
]

# Ordinary calls that use an emergency's words: the past, a worry, the aftermath, a device's name.
NOT_EMERGENCIES = [
    "我去年出了车祸，现在医保能报销吗",
    "之前着火烧了房子，申请的临时救助什么时候发",
    "我想问问被狗咬了打疫苗能报销吗",
    "小区消防通道老是被车堵着，能不能管一下",
    "我爸中风以后在家躺着，能申请护理补贴吗",
    "上个月我家被偷了，派出所立案了到现在没消息",
    "孩子打架被学校处分了，这合理吗",
    "燃气报警器老是响，是不是坏了",
    "我被骗了两千块钱买了假货，商家不给退",
    "楼上装修电钻声吵得我头疼",
    "听说打了疫苗会发烧，正常吗",
    "我们村的河道垃圾堆成山了，没人清",
    "电梯老是坏，物业也不修",
    "以前在工地摔伤过，现在还能认定工伤吗",
    "晚上路灯不亮，老人摔倒过好几次",
    "孩子得了白血病，医保能报多少",
    "我老公喝多了就睡觉，醒了也不认账欠的钱",
    "救护车收费太贵了，拉了两公里要三百",
    "山上有人烧纸祭祖，怕引起火灾",
]


@pytest.mark.parametrize(("text", "category"), CALM_EMERGENCIES)
def test_calm_and_indirect_emergencies(router: Router, text: str, category: str) -> None:
    assert router.classify(text).category == category


# False alarms of the model on these lines, known and left as they are (the emergency recall
# comes first). Since the sixth seed corpus (emergencies said calmly or indirectly): a worry said with
# an open fire in it, and a question about a vaccine's fever. The test fails when one of them is no
# longer an alarm, so the list stays true.
KNOWN_ALARMS = {
    "山上有人烧纸祭祖，怕引起火灾": "转119",
    "听说打了疫苗会发烧，正常吗": "转120",
}


def test_emergency_words_in_ordinary_calls_raise_few_alarms(router: Router) -> None:
    # detection leans to recall (dispatch.routing.EMERGENCY_DECIDE): a model-suspected emergency is
    # filed as one and the console asks the operator to confirm; no rule may fire on these
    results = [(t, router.classify(t)) for t in NOT_EMERGENCIES]
    alarms = {t: r.category for t, r in results if r.category in EMERGENCY}
    unknown = {t: c for t, c in alarms.items() if t not in KNOWN_ALARMS}
    assert not unknown, unknown  # besides the known ones, none (the floor was one in twenty)
    assert {t: alarms.get(t) for t in KNOWN_ALARMS} == KNOWN_ALARMS
    assert all(r.possible_emergency == r.category for _t, r in results if r.category in EMERGENCY)


# Ordinary calls in everyday words, to a department (written for this test; a few are judgement calls,
# hence a floor rather than every line).
ORDINARY_CALLS = [
    ("隔壁饭店的排风扇对着我家窗户，油烟全进屋了", "投诉建议", "sthjj"),
    ("楼下理发店音响放得震天响，一天到晚不停", "投诉建议", "sthjj"),
    ("村口有人天天烧垃圾，烟熏得人喘不过气来", "投诉建议", "sthjj"),
    ("小区楼下有人私自圈地种菜，还泼大粪", "投诉建议", "cgj"),
    ("我们路口那个卖早点的三轮车天天堵在盲道上", "投诉建议", "cgj"),
    ("邻居在一楼院子里私自扩建了一间房", "投诉建议", "cgj"),
    ("买的电动车刚骑一个月电池就不行了，店里不给换", "投诉建议", "scjgj"),
    ("饭店菜单上写的三十，结账收我五十", "投诉建议", "scjgj"),
    ("健身房卡办了以后老板跑路了", "投诉建议", "scjgj"),
    ("药店卖过期的药", "投诉建议", "scjgj"),
    ("公司不跟我签劳动合同，干了一年了", "投诉建议", "rsj"),
    ("老板扣了我半个月工资不给", "投诉建议", "rsj"),
    ("新买的房子墙上全是裂缝，开发商不管", "投诉建议", "zjj"),
    ("物业费涨价也不开业主大会", "投诉建议", "zjj"),
    ("学校逼着家长买指定的教辅资料", "投诉建议", "jyj"),
    ("老师周末在家里办补习班收钱", "投诉建议", "jyj"),
    ("出租车司机拒载，说不顺路", "投诉建议", "jtj"),
    ("小区门口天天有人飙车炸街，半夜轰轰响", "投诉建议", "gaj"),
    ("卫生院的医生收红包", "投诉建议", "wjj"),
    ("家里的自来水一股漂白粉味，还发黄", "生活求助", "sw"),
    ("我们村的电压太低了，空调都开不起来", "生活求助", "gdj"),
    ("天然气突然停了，饭都做不了", "生活求助", "rqgs"),
    ("小区门口的垃圾桶被人偷走了，垃圾扔地上", "生活求助", "cgj"),
    ("路中间有个大坑，一下雨全是水，看不见", "生活求助", "jtj"),
    ("我们这条街的路灯一到晚上就一闪一闪的", "生活求助", "cgj"),
    ("养老保险断缴了三年，还能补吗", "政策咨询", "rsj"),
    ("医保卡能不能给老婆孩子用", "政策咨询", "ybj"),
    ("公积金能不能取出来付首付", "政策咨询", "gjj"),
    ("孩子户口不在学区，能上这个学校吗", "政策咨询", "jyj"),
    ("我们两口子想领养一个孩子，需要什么条件", "政策咨询", "mzj"),
    ("现在生二胎还要办准生证吗", "政策咨询", "wjj"),
    ("种大棚蔬菜有没有补贴", "政策咨询", "nyj"),
    ("房子出租要交税吗", "政策咨询", "swj"),
    ("农村的房子能办房产证吗", "政策咨询", "zrzyj"),
    ("对面新开的洗车店天天早上六点就开高压水枪，吵死了", "投诉建议", "sthjj"),
    ("小区旁边的砖厂烟囱冒黑烟，衣服都不敢晒", "投诉建议", "sthjj"),
    ("有人在我们楼下的空地上私自盖了个小卖部", "投诉建议", "cgj"),
    ("路边的小吃摊把污水直接倒进雨水口", "投诉建议", "cgj"),
    ("在网上团购的火锅券，到店说不能用，也不给退", "投诉建议", "scjgj"),
    ("奶粉店卖的奶粉是假的，孩子喝了起疹子", "投诉建议", "scjgj"),
    ("公司让我们每天加班到十点，一分钱加班费都没有", "投诉建议", "rsj"),
    ("辞职了公司扣着我的工资不发，说要赔培训费", "投诉建议", "rsj"),
    ("开发商交房时说好的车位现在要另外收钱", "投诉建议", "zjj"),
    ("小区电梯天天坏，关了人好几次，物业也不管", "投诉建议", "zjj"),
    ("乡里的客车经常超载，人挤人", "投诉建议", "jtj"),
    ("学校食堂的饭菜太差了，还贵", "投诉建议", "jyj"),
    ("卫生院打针的护士把我孩子扎了好几针都没扎进去，态度还凶", "投诉建议", "wjj"),
    ("晚上有人在马路上飙摩托，声音特别吓人", "投诉建议", "gaj"),
    ("我家水表箱被车撞坏了，水哗哗往外流", "生活求助", "sw"),
    ("我们家电表箱里老是跳闸，一开空调就断电", "生活求助", "gdj"),
    ("小区门口的井盖松了，一踩就翻", "生活求助", "cgj"),
    ("村里去镇上的桥被水冲坏了一半，车过不去了", "生活求助", "jtj"),
    ("燃气灶打不着火，燃气表也没显示", "生活求助", "rqgs"),
    ("我退休以后还在外面打工，养老金会不会被扣", "政策咨询", "rsj"),
    ("在外地住院回来报销需要准备什么", "政策咨询", "ybj"),
    ("残疾人两项补贴一个月有多少", "政策咨询", "mzj"),
    ("孩子上高中有没有免学费的政策", "政策咨询", "jyj"),
    ("老旧小区加装电梯政府补多少钱", "政策咨询", "zjj"),
    ("养殖场环保验收要怎么弄，有没有补助", "政策咨询", "nyj"),
]


def test_ordinary_calls_in_everyday_words(router: Router) -> None:
    wrong = [
        (text, result.category, result.department)
        for text, category, department in ORDINARY_CALLS
        # labelled as dispatched: a simple query counts as the 政策咨询 it becomes unanswered
        if ((result := router.classify(text).unanswered()).category, result.department)
        != (category, department)
    ]
    assert len(wrong) <= 0.15 * len(ORDINARY_CALLS), wrong
