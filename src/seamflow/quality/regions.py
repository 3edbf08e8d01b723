"""Provinces and cities of China by their official names, found from the ways people write them.

The 34 provincial-level divisions (23 provinces, 5 autonomous regions, 4 municipalities, 2 special
administrative regions, per GB/T 2260) with their one-character abbreviation (`粤`) and their
common short form (`广东`, `内蒙`, `广西`); and the prefecture-level cities most often met in
retail data (every provincial capital and the large cities), written with or without `市`.
"""

from __future__ import annotations

import re
from functools import cache

from seamflow.quality.text import clean_text

__all__ = ["PROVINCES", "RegionUnknown", "normalise_city", "normalise_province"]

PROVINCES: tuple[tuple[str, str, str], ...] = (
    # official name, abbreviation, short form
    ("北京市", "京", "北京"),
    ("天津市", "津", "天津"),
    ("上海市", "沪", "上海"),
    ("重庆市", "渝", "重庆"),
    ("河北省", "冀", "河北"),
    ("山西省", "晋", "山西"),
    ("辽宁省", "辽", "辽宁"),
    ("吉林省", "吉", "吉林"),
    ("黑龙江省", "黑", "黑龙江"),
    ("江苏省", "苏", "江苏"),
    ("浙江省", "浙", "浙江"),
    ("安徽省", "皖", "安徽"),
    ("福建省", "闽", "福建"),
    ("江西省", "赣", "江西"),
    ("山东省", "鲁", "山东"),
    ("河南省", "豫", "河南"),
    ("湖北省", "鄂", "湖北"),
    ("湖南省", "湘", "湖南"),
    ("广东省", "粤", "广东"),
    ("海南省", "琼", "海南"),
    ("四川省", "川", "四川"),
    ("贵州省", "黔", "贵州"),
    ("云南省", "滇", "云南"),
    ("陕西省", "陕", "陕西"),
    ("甘肃省", "甘", "甘肃"),
    ("青海省", "青", "青海"),
    ("台湾省", "台", "台湾"),
    ("内蒙古自治区", "蒙", "内蒙古"),
    ("广西壮族自治区", "桂", "广西"),
    ("西藏自治区", "藏", "西藏"),
    ("宁夏回族自治区", "宁", "宁夏"),
    ("新疆维吾尔自治区", "新", "新疆"),
    ("香港特别行政区", "港", "香港"),
    ("澳门特别行政区", "澳", "澳门"),
)
"""(official name, abbreviation, short form) of each provincial-level division."""

_CITIES = (
    "石家庄 唐山 保定 邯郸 太原 大同 沈阳 大连 鞍山 长春 吉林 哈尔滨 大庆 南京 苏州 无锡 常州 南通 徐州 扬州 "
    "杭州 宁波 温州 嘉兴 绍兴 金华 台州 合肥 芜湖 福州 厦门 泉州 南昌 赣州 济南 青岛 烟台 潍坊 临沂 郑州 洛阳 "
    "武汉 宜昌 襄阳 长沙 株洲 岳阳 广州 深圳 珠海 汕头 佛山 东莞 中山 惠州 江门 湛江 海口 三亚 成都 绵阳 贵阳 "
    "遵义 昆明 西安 兰州 西宁 呼和浩特 包头 南宁 柳州 桂林 拉萨 银川 乌鲁木齐"
).split()
_SUFFIX = re.compile(r"(省|市|自治区|特别行政区|壮族自治区|回族自治区|维吾尔自治区)$")


class RegionUnknown(ValueError):
    """The text names no known province or city."""


@cache
def _province_names() -> dict[str, str]:
    names: dict[str, str] = {}
    for official, abbreviation, short in PROVINCES:
        for name in (official, abbreviation, short):
            names[name] = official
    names["内蒙"] = "内蒙古自治区"
    return names


def normalise_province(text: str) -> str:
    """Return the official name of a provincial-level division: `粤`, `广东`, `广东省` → `广东省`.

    Raises:
        RegionUnknown: no division has that name.
    """
    name = clean_text(text).replace(" ", "")
    names = _province_names()
    found = names.get(name) or names.get(_SUFFIX.sub("", name))
    if found is None:
        raise RegionUnknown("is not one of the 34 provincial-level divisions")
    return found


def normalise_city(text: str) -> str:
    """Return the official name of a known city: `深圳`, `深圳市` → `深圳市`.

    Raises:
        RegionUnknown: not a city in the table (see the module docstring for which cities it holds).
    """
    name = clean_text(text).replace(" ", "")
    bare = name[:-1] if name.endswith("市") else name
    if bare in _CITY_SET:
        return bare + "市"
    raise RegionUnknown("is not a known prefecture-level city")


_CITY_SET = frozenset(_CITIES)
