"""Customer records of a Chinese retail chain as its old POS exports them: GBK CSV, phones typed five
ways, amounts with 元 and ￥, dates in Chinese and ISO forms — and a known share of bad rows.

Row n (1-based) is bad when n % 10 == 7 (a phone that is no number) or n % 25 == 3 (an identity number
with a wrong check digit); every other row is good. Tests and `benchmarks/data_quality.py` share it.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

from stdnum.cn import ric

COLUMNS = ["会员编号", "姓名", "手机", "身份证号", "储值余额", "开卡日期", "省份", "会员等级"]
_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘"
_GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华建国红梅志强晓东丹丹"
_REGIONS = ["110105", "310104", "110108", "120101"]
"""Regions (Beijing Chaoyang and Haidian, Shanghai Xuhui, Tianjin Heping) that existed in every birth year used."""
_PROVINCES = ["北京", "上海市", "广东省", "浙江", "四川省", "湖北", "江苏省", "陕西"]
_LEVELS = ["普通会员", "银卡会员", "金卡会员"]
_PREFIXES = ["138", "139", "186", "135", "150", "177", "189", "131"]


def is_bad(number: int) -> bool:
    """Whether row `number` (1-based) was made bad on purpose."""
    return number % 10 == 7 or number % 25 == 3


def member_no(number: int) -> str:
    return f"M{number:08d}"


def _phone(rng: random.Random, number: int) -> str:
    digits = rng.choice(_PREFIXES) + f"{rng.randrange(10**8):08d}"
    if number % 10 == 7:
        return "1234-" + digits[:5]  # typed into the wrong column: not a number
    style = number % 5
    if style == 0:
        return digits
    if style == 1:
        return f"{digits[:3]}-{digits[3:7]}-{digits[7:]}"
    if style == 2:
        return f"+86 {digits[:3]} {digits[3:7]} {digits[7:]}"
    if style == 3:
        return "0086" + digits
    return digits.translate({ord(c): ord(c) + 0xFEE0 for c in "0123456789"})  # full width


def _resident_id(rng: random.Random, number: int) -> str:
    born = date(1975, 1, 1) + timedelta(days=rng.randrange(11000))
    body = f"{rng.choice(_REGIONS)}{born:%Y%m%d}{rng.randrange(1000):03d}"
    check = ric.calc_check_digit(body + "0")  # it reads the first 17 digits of a full number
    if number % 25 == 3:
        check = "0" if check != "0" else "1"
    return body + check


def _amount(rng: random.Random, number: int) -> str:
    cents = rng.randrange(0, 5_000_000)
    text = f"{cents // 100}.{cents % 100:02d}"
    return [text, f"{cents // 100:,}.{cents % 100:02d}元", f"￥{text}"][number % 3]


def _joined(rng: random.Random, number: int) -> str:
    day = date(2015, 1, 1) + timedelta(days=rng.randrange(3600))
    return [day.isoformat(), f"{day.year}年{day.month}月{day.day}日", f"{day.year}/{day.month}/{day.day}"][number % 3]


def rows(count: int, seed: int = 16) -> Iterator[list[str]]:
    """`count` rows in `COLUMNS` order, numbered from 1."""
    rng = random.Random(seed)
    for number in range(1, count + 1):
        name = rng.choice(_SURNAMES) + rng.choice(_GIVEN) + (rng.choice(_GIVEN) if number % 2 else "")
        yield [
            member_no(number),
            name,
            _phone(rng, number),
            _resident_id(rng, number),
            _amount(rng, number),
            _joined(rng, number),
            rng.choice(_PROVINCES),
            rng.choice(_LEVELS),
        ]


def write_csv(path: Path, count: int, *, encoding: str = "gbk", seed: int = 16) -> None:
    """Write `count` customers to a CSV with a header, in `encoding` (GBK by default, as POS exports are)."""
    with path.open("w", encoding=encoding, newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        writer.writerows(rows(count, seed))


RULES = """\
id: members
fields:
  member_no: {required: true, regex: 'M\\d{8}'}
  name: {required: true, max_length: 20}
  mobile: {type: mobile_cn, required: true}
  id_number: {type: resident_id}
  balance: {type: amount, min: 0, max: 1000000}
  joined: {type: date, min: 2000-01-01}
  province: {type: province}
  level: {enum: [普通会员, 银卡会员, 金卡会员]}
"""

FIELDS = {
    "member_no": "会员编号",
    "name": "姓名",
    "mobile": "手机",
    "id_number": "身份证号",
    "balance": "储值余额",
    "joined": "开卡日期",
    "province": "省份",
    "level": "会员等级",
}
