"""Members of a retail chain (hundreds of stores) as its three systems hold them, with the truth.

Each person is a member of one or more systems: the POS (card at the till: a GBK CSV export),
the web shop (mini-program and Tmall store: a REST list) and the CRM (a SQL table). The same
person is typed differently in each: mobiles as `138 0013 8000`, `+86-138…`, `0086…` or in full
width, a wrong digit now and then; names in traditional characters (陳偉東), in pinyin in the shop
(`Chen Weidong`), a wrong character; e-mails spelled from the name's pinyin; some members have two
POS cards. About 1 % of people share a mobile with a family member (a different person). Points
differ per system and add up per person. `truth` maps every record (`source:key`) to its person.
"""

from __future__ import annotations

import csv
import json
import random
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["POS_COLUMNS", "Members", "generate", "write_crm", "write_pos", "write_shop"]

_SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
    "姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
_GIVEN = (
    "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂华建国红梅志晓东丹玲萍鹏辉斌宇浩凯健俊帆帅旭宁"
    "龙林欣琳颖慧雪倩婷雯嘉怡佳鑫博文晨阳思雨梓萱子涵欢乐诗琪瑶璐露凤云飞成荣新海波永庆春秋"
)
_TRADITIONAL = {
    "陈": "陳",
    "张": "張",
    "刘": "劉",
    "杨": "楊",
    "黄": "黃",
    "赵": "趙",
    "吴": "吳",
    "孙": "孫",
    "马": "馬",
    "郑": "鄭",
    "梁": "梁",
    "谢": "謝",
    "韩": "韓",
    "冯": "馮",
    "邓": "鄧",
    "萧": "蕭",
    "叶": "葉",
    "苏": "蘇",
    "吕": "呂",
    "卢": "盧",
    "钟": "鍾",
    "谭": "譚",
    "陆": "陸",
    "贾": "賈",
    "龙": "龍",
    "顾": "顧",
    "龚": "龔",
    "伟": "偉",
    "丽": "麗",
    "强": "強",
    "军": "軍",
    "杰": "傑",
    "涛": "濤",
    "华": "華",
    "国": "國",
    "红": "紅",
    "东": "東",
    "晓": "曉",
    "玲": "玲",
    "鹏": "鵬",
    "辉": "輝",
    "健": "健",
    "帅": "帥",
    "宁": "寧",
    "欣": "欣",
    "颖": "穎",
    "雯": "雯",
    "鑫": "鑫",
    "博": "博",
    "阳": "陽",
    "诗": "詩",
    "瑶": "瑤",
    "璐": "璐",
    "露": "露",
    "凤": "鳳",
    "云": "雲",
    "飞": "飛",
    "荣": "榮",
    "海": "海",
    "庆": "慶",
    "乐": "樂",
    "欢": "歡",
    "梅": "梅",
}
_PREFIXES = ["138", "139", "136", "137", "150", "151", "158", "159", "186", "187", "188", "135", "177", "189", "131"]
_MAIL_HOSTS = ["qq.com", "163.com", "126.com", "sina.com", "gmail.com", "foxmail.com"]
_CITIES = [
    ("上海市", "上海市", ["徐汇区", "浦东新区", "静安区", "杨浦区"]),
    ("北京市", "北京市", ["朝阳区", "海淀区", "东城区", "丰台区"]),
    ("广东省", "广州市", ["天河区", "越秀区", "海珠区"]),
    ("广东省", "深圳市", ["南山区", "福田区", "宝安区"]),
    ("浙江省", "杭州市", ["西湖区", "拱墅区", "滨江区"]),
    ("四川省", "成都市", ["武侯区", "锦江区", "青羊区"]),
    ("江苏省", "南京市", ["鼓楼区", "玄武区", "建邺区"]),
    ("湖北省", "武汉市", ["江汉区", "武昌区", "洪山区"]),
]
_STREETS = "人民路 中山路 解放路 建设路 南京路 长江路 学府路 和平路 新华路 文化路 青年路 朝阳路".split()
_REGIONS = ["310104", "110105", "440106", "440305", "330106", "510107", "320106", "420103"]
POS_COLUMNS = ["会员编号", "姓名", "手机", "积分", "门店", "更新日期"]


@dataclass(slots=True)
class Person:
    number: int
    name: str
    mobile: str
    email: str
    id_number: str
    address: str
    city_index: int


@dataclass(slots=True)
class Members:
    """The records of the three systems and which person each is."""

    pos: list[dict[str, Any]] = field(default_factory=list)
    shop: list[dict[str, Any]] = field(default_factory=list)
    crm: list[dict[str, Any]] = field(default_factory=list)
    truth: dict[str, int] = field(default_factory=dict)
    """`pos:P0000001` → the person's number."""
    points: dict[int, int] = field(default_factory=dict)
    """Each person's points over every system."""

    @property
    def records(self) -> int:
        return len(self.pos) + len(self.shop) + len(self.crm)


def _check_digit(body: str) -> str:
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    return "10X98765432"[sum(int(d) * w for d, w in zip(body, weights, strict=True)) % 11]


_USED_MAILS: set[str] = set()


def _person(rng: random.Random, number: int, pinyin: Any, family: Person | None) -> Person:
    name = rng.choice(_SURNAMES) + "".join(rng.choice(_GIVEN) for _ in range(rng.choice((1, 2, 2))))
    if family is not None:
        name = family.name[0] + "".join(rng.choice(_GIVEN) for _ in range(2))
    mobile = family.mobile if family is not None else rng.choice(_PREFIXES) + f"{rng.randrange(10**8):08d}"
    spelled = pinyin(name)
    local = rng.choice([spelled, spelled + str(rng.randrange(10, 99)), spelled[: len(spelled) // 2] + mobile[-4:]])
    while local in _USED_MAILS:  # an address is one person's: the mail host said it was taken
        local += str(rng.randrange(10))
    _USED_MAILS.add(local)
    city = rng.randrange(len(_CITIES))
    province, town, districts = _CITIES[city]
    address = f"{province}{town}{rng.choice(districts)}{rng.choice(_STREETS)}{rng.randrange(1, 999)}号"
    born = f"{rng.randrange(1960, 2004)}{rng.randrange(1, 13):02d}{rng.randrange(1, 29):02d}"
    body = _REGIONS[city] + born + f"{rng.randrange(1000):03d}"
    return Person(number, name, mobile, f"{local}@{rng.choice(_MAIL_HOSTS)}", body + _check_digit(body), address, city)


def _typed_mobile(rng: random.Random, mobile: str) -> str:
    if rng.random() < 0.03:  # a wrong digit
        at = rng.randrange(3, 11)
        mobile = mobile[:at] + str((int(mobile[at]) + rng.randrange(1, 10)) % 10) + mobile[at + 1 :]
    form = rng.random()
    if form < 0.45:
        return mobile
    if form < 0.6:
        return f"{mobile[:3]} {mobile[3:7]} {mobile[7:]}"
    if form < 0.72:
        return f"+86-{mobile[:3]}-{mobile[3:7]}-{mobile[7:]}"
    if form < 0.82:
        return "0086" + mobile
    if form < 0.9:
        return mobile.translate({ord(d): 0xFF10 + int(d) for d in "0123456789"})
    return f"(+86){mobile}"


def _typed_name(rng: random.Random, name: str, pinyin: Any, *, may_spell: bool) -> str:
    roll = rng.random()
    if roll < 0.12:
        return "".join(_TRADITIONAL.get(c, c) for c in name)
    if roll < 0.15 and len(name) > 2:  # a wrong character in the given name
        return name[:-1] + rng.choice(_GIVEN)
    if may_spell and roll < 0.25:
        spelled = pinyin(name)
        surname = pinyin(name[0])
        return f"{surname.capitalize()} {spelled[len(surname) :].capitalize()}"
    if roll < 0.27:
        return f" {name[0]} {name[1:]} "
    return name


def _people(rng: random.Random, count: int, pinyin: Any) -> Iterator[Person]:
    made: list[Person] = []
    for number in range(1, count + 1):
        family = made[rng.randrange(len(made))] if made and rng.random() < 0.01 else None
        person = _person(rng, number, pinyin, family)
        if len(made) < 5000:
            made.append(person)
        yield person


def generate(people: int, *, seed: int = 16, stores: int = 320) -> Members:
    """Make the records of `people` people across the POS, the web shop and the CRM."""
    from seamflow.identity import name_pinyin

    rng = random.Random(seed)
    _USED_MAILS.clear()
    found = Members()
    for person in _people(rng, people, name_pinyin):
        where = [s for s, share in (("pos", 0.7), ("shop", 0.5), ("crm", 0.4)) if rng.random() < share] or ["pos"]
        total = 0
        for system in where:
            cards = 2 if system == "pos" and rng.random() < 0.05 else 1
            for _ in range(cards):
                points = rng.randrange(0, 20000)
                total += points
                _add(found, rng, system, person, points, stores, name_pinyin)
        found.points[person.number] = total
    return found


def _add(
    found: Members, rng: random.Random, system: str, person: Person, points: int, stores: int, pinyin: Any
) -> None:
    updated = f"20{rng.randrange(19, 26)}-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}"
    if system == "pos":
        key = f"P{len(found.pos) + 1:08d}"
        found.pos.append(
            {
                "会员编号": key,
                "姓名": _typed_name(rng, person.name, pinyin, may_spell=False),
                "手机": _typed_mobile(rng, person.mobile),
                "积分": str(points),
                "门店": f"S{rng.randrange(1, stores + 1):04d}",
                "更新日期": updated.replace("-", "/", 1).replace("-", "/"),
            }
        )
    elif system == "shop":
        key = f"W{len(found.shop) + 1:08d}"
        found.shop.append(
            {
                "id": key,
                "nickname": _typed_name(rng, person.name, pinyin, may_spell=True),
                "mobile": _typed_mobile(rng, person.mobile) if rng.random() < 0.95 else None,
                "email": person.email if rng.random() < 0.8 else None,
                "address": person.address if rng.random() < 0.7 else None,
                "points": points,
                "updated_at": updated + "T10:00:00+08:00",
            }
        )
    else:
        key = f"C{len(found.crm) + 1:08d}"
        found.crm.append(
            {
                "customer_id": key,
                "name": _typed_name(rng, person.name, pinyin, may_spell=False),
                "mobile": _typed_mobile(rng, person.mobile),
                "email": person.email if rng.random() < 0.6 else None,
                "id_number": person.id_number if rng.random() < 0.5 else None,
                "address": person.address if rng.random() < 0.8 else None,
                "points": points,
                "updated": updated,
            }
        )
    found.truth[f"{system}:{key}"] = person.number


def write_pos(members: Members, path: Path) -> None:
    """The POS export: a CSV in GBK (GB18030 for the rare character outside it), as the till software writes it."""
    with path.open("w", encoding="gb18030", newline="") as handle:
        writer = csv.DictWriter(handle, POS_COLUMNS)
        writer.writeheader()
        writer.writerows(members.pos)


def write_shop(members: Members, path: Path) -> None:
    """The web shop's members as the JSON its REST list serves."""
    path.write_text(json.dumps(members.shop, ensure_ascii=False), encoding="utf-8")


def write_crm(members: Members, path: Path) -> None:
    """The CRM's customer table in a SQLite database."""
    path.unlink(missing_ok=True)
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE customers (customer_id TEXT PRIMARY KEY, name TEXT, mobile TEXT, email TEXT,"
            " id_number TEXT, address TEXT, points INTEGER, updated TEXT)"
        )
        db.executemany(
            "INSERT INTO customers VALUES (:customer_id, :name, :mobile, :email, :id_number, :address, :points,"
            " :updated)",
            members.crm,
        )
    db.close()
