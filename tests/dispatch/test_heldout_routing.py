"""The router alone on the held-out utterances that no knowledge-base entry answers
(tests/knowledge_base/data/heldout*_queries*.jsonl): complaints, help requests, policy questions,
complex matters, emergencies and calls without a request. Written for the project, never tuned on.
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
    assert category >= 0.92, wrong
    assert department >= 0.92


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


def test_emergency_words_in_ordinary_calls_raise_no_alarm(router: Router) -> None:
    alarms = [
        (t, router.classify(t).category) for t in NOT_EMERGENCIES if router.classify(t).category in EMERGENCY
    ]
    assert alarms == []
