"""The personal-data scrubber of the public disclosure, on realistic citizens' and departments' text:
every name, phone number, ID-card number, licence plate and house number is gone, and the words that
say what the matter was and where (the road, the estate, the dates, the amounts) are still there."""

from __future__ import annotations

import pytest

from dispatch.intake.scrubber import scrub, scrub_text

# (text, personal data that must not survive, words that must survive)
CASES: list[tuple[str, list[str], list[str]]] = [
    (  # a department's reply naming a third person (the first-day leak on /gongkai)
        "已答复王某女士，李建国电话15912345678已记录，已联系赵德胜核实，向阳社区刘玉兰家中已恢复供水。",
        ["李建国", "15912345678", "赵德胜", "刘玉兰"],
        ["王某女士", "李某电话", "向阳社区", "恢复供水"],
    ),
    (
        "我叫王小明，电话13812345678，住在河西路18号3栋2单元501室，家里从昨晚开始停水。",
        ["王小明", "13812345678", "18号", "501室", "3栋"],
        ["河西路", "停水", "王某"],
    ),
    (
        "市民李先生反映：幸福小区7幢楼下有人长期占用消防通道停车，车牌号川A12345。",
        ["川A12345", "7幢"],
        ["李先生", "幸福小区", "消防通道"],
    ),
    (
        "本人张建国，身份证号510104199003071234，在某装修公司打工三个月，老板拖欠工资8000元。",
        ["张建国", "510104199003071234"],
        ["拖欠工资", "8000元", "张某"],
    ),
    (
        "联系人：欧阳娜娜，座机028-86123456，反映滨河新村三期旁工地夜间施工噪音扰民。",
        ["欧阳娜娜", "86123456"],
        ["滨河新村", "噪音扰民", "028"],
    ),
    (
        "张家村3组15号的村民赵铁柱说他家房子被旁边采石场放炮震裂了。",
        ["赵铁柱", "15号", "3组"],
        ["张家村", "采石场"],
    ),
    (
        "业主向物业反映多次，电梯一直没修好，请有关部门督促。",
        [],
        ["业主向物业反映多次", "电梯"],
    ),
    (
        "11月5号到现在已经停了三次电，每次都是晚上七点左右，影响孩子写作业。",
        [],
        ["11月5号", "停了三次电", "七点"],
    ),
    (
        "来电人刘芳，手机 139 1234 5678，人民路88号门口的井盖丢了，很危险。",
        ["刘芳", "139 1234 5678", "88号"],
        ["人民路", "井盖"],
    ),
    (
        "反映人孙立新称其母亲在县医院住院，医保报销比例有疑问，联系电话15908761234。",
        ["孙立新", "15908761234"],
        ["县医院", "医保报销"],
    ),
    (
        "车牌为渝B·7K2M9的白色面包车每天在育才路小学门口违停，接送学生很不安全。",
        ["渝B·7K2M9", "7K2M9"],
        ["育才路小学", "违停"],
    ),
    (
        "新能源车粤AD12345在充电桩位置长期占位，物业不管。",
        ["粤AD12345", "D12345"],
        ["充电桩"],
    ),
    (
        "我是租户陈静，房东周志强押金3000元一直不退，他的电话是13600001111。",
        ["陈静", "周志强", "13600001111"],
        ["押金3000元", "陈某", "周某"],
    ),
    (
        "东城花园B座1204的住户把空调外机装在公共走廊，已经和他沟通过没用。",
        ["B座", "1204"],
        ["东城花园", "空调外机"],
    ),
    (
        "金桂苑5-2-301楼上漏水，把我家天花板泡坏了。",
        ["5-2-301"],
        ["金桂苑", "漏水"],
    ),
    (
        "请联系我的邮箱wangli1988@163.com，我想了解公积金提取政策。",
        ["wangli1988"],
        ["公积金提取政策", "163.com"],
    ),
    (
        "我儿子王浩然在实验小学读三年级，学校收取的资料费是否合规？",
        ["王浩然"],
        ["实验小学", "资料费"],
    ),
    (
        "快递员黄师傅把包裹放在小区门口丢了，快递公司不赔偿。",
        [],
        ["黄师傅", "快递公司"],
    ),
    (
        "经核实，业主吴海燕反映的问题属实，已责令施工单位晚上十点后停止施工。",
        ["吴海燕"],
        ["属实", "停止施工"],
    ),
    (
        "我叫马丽，今年68岁，独居，想申请居家养老服务，家住城关街道解放路120号。",
        ["马丽", "120号"],
        ["居家养老服务", "解放路", "68岁"],
    ),
    (
        "邻居杨光明家养的狗经常半夜叫，住在锦绣家园12栋，请社区协调。",
        ["杨光明", "12栋"],
        ["锦绣家园", "社区协调"],
    ),
    (
        "在银行卡6222021234567890123上被扣了两笔不明费用，银行说找12345。",
        ["6222021234567890123"],
        ["不明费用", "12345"],
    ),
    (
        "司机何勇开的出租车川A·T5678拒载，还多收了20元。",
        ["何勇", "T5678"],
        ["出租车", "拒载", "20元"],
    ),
    (
        "患者家属反映，父亲郑国庆在县人民医院做手术，被要求自费购买耗材。",
        ["郑国庆"],
        ["县人民医院", "自费购买耗材"],
    ),
    (
        "投诉人：谢婷婷，13798765432，在超市买到过期牛奶，小票还在。",
        ["谢婷婷", "13798765432"],
        ["过期牛奶", "小票"],
    ),
    (
        "老人曹德福今年82岁，低保金三个月没到账，家住河西镇李家湾村6组。",
        ["曹德福", "6组"],
        ["低保金", "李家湾村", "82岁"],
    ),
    (
        "我们单位的刘经理说社保要从下个月才开始交，这样合法吗？",
        [],
        ["刘经理", "社保"],
    ),
    (
        "地铁3号线施工围挡占了半条路，早高峰堵得厉害。",
        [],
        ["地铁3号线", "早高峰"],
    ),
    (
        "已于11月18日安排维修人员到场，更换了幸福路东段损坏的路灯12盏，现已恢复照明。",
        [],
        ["11月18日", "幸福路东段", "路灯12盏", "恢复照明"],
    ),
    (
        "已联系当事人韩梅梅，双方就退款达成一致，商家退还货款560元。",
        ["韩梅梅"],
        ["退款达成一致", "560元"],
    ),
    (
        "户主冯大强的宅基地证办了两年还没下来，村里说在县自然资源局。",
        ["冯大强"],
        ["宅基地证", "县自然资源局"],
    ),
    (
        "晚上十一点以后夜市还很吵，摊主电话是8812345，打过去没人管。",
        ["8812345"],
        ["夜市", "十一点"],
    ),
    (
        "我的旧身份证号是510104800307123，办社保转移时系统提示不一致。",
        ["510104800307123"],
        ["社保转移", "不一致"],
    ),
    (
        "建设路一段45号附2号的餐馆油烟直排，熏得我们家不敢开窗。",
        ["45号", "附2号"],
        ["建设路一段", "油烟直排"],
    ),
    (
        "名叫上官云的工作人员态度很差，在政务服务中心3号窗口。",
        ["上官云"],
        ["政务服务中心", "3号窗口", "态度很差"],
    ),
]


@pytest.mark.parametrize(("text", "private", "kept"), CASES, ids=[str(i) for i in range(len(CASES))])
def test_personal_data_is_masked_and_the_matter_stays(text: str, private: list[str], kept: list[str]) -> None:
    out = scrub_text(text)
    for value in private:
        assert value not in out, f"{value!r} survived: {out}"
    for value in kept:
        assert value in out, f"{value!r} was lost: {out}"
    # A sentence without personal data comes out unchanged: the scrubber does not mask at random.
    assert (out == text) == (not private), out


def test_there_are_at_least_thirty_sentences() -> None:
    assert len(CASES) >= 30
    assert sum(1 for _, private, _ in CASES if private) >= 25


def test_the_tickets_own_caller_is_masked_whatever_the_patterns_say() -> None:
    # A name without a cue word and a short number the patterns would not recognise on their own.
    text = "诸葛明亮反映楼道灯坏了，可拨 66120 联系"
    assert scrub_text(text) == text
    out = scrub(text, names=["诸葛明亮"], phones=["66120"])
    assert out.text == "诸葛某反映楼道灯坏了，可拨 ***** 联系"
    assert ("name", "诸葛明亮") in out.found and ("phone", "66120") in out.found


def test_what_was_found_is_reported_by_kind() -> None:
    out = scrub("我叫王小明，电话13812345678，车牌川A12345，住河西路18号")
    kinds = {kind for kind, _ in out.found}
    assert kinds == {"name", "mobile", "plate", "address"}
    assert out.text == "我叫王某，电话138********，车牌川A*****，住河西路*号"


def test_empty_text() -> None:
    assert scrub_text(None) == ""
    assert scrub_text("") == ""
