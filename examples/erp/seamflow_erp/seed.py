"""Realistic sample data for a Chinese office-supplies trading company; running it twice changes nothing."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select

from seamflow_erp import billing, bodies, catalog, customers, orders, schema
from seamflow_erp.database import Database
from seamflow_erp.identifiers import credit_code_check_char

__all__ = ["PRODUCTS", "seed"]

PRODUCTS = [
    ("CHAIR-ERG-01", "人体工学办公椅", "把", "899.00"),
    ("CHAIR-MTG-02", "会议椅（网布）", "把", "268.00"),
    ("DESK-1400", "办公桌 1400×700", "张", "1280.00"),
    ("PRN-LJ-M404", "激光打印机 M404dn", "台", "2399.00"),
    ("TONER-CF276A", "硒鼓 CF276A", "支", "689.50"),
    ("PAPER-A4-70", "A4 复印纸 70g（5包/箱）", "箱", "129.90"),
    ("PAPER-A3-80", "A3 复印纸 80g（5包/箱）", "箱", "259.00"),
    ("CAB-FILE-4", "四门文件柜", "个", "1150.00"),
    ("PEN-GEL-05", "中性笔 0.5mm（12支/盒）", "盒", "18.80"),
    ("SHRED-S5", "碎纸机 5级保密", "台", "1599.00"),
]


def _credit_code(body: str) -> str:
    return body + credit_code_check_char(body)


CUSTOMERS = [
    (
        "C100001",
        "上海明远贸易有限公司",
        "13816623481",
        "purchase@mingyuan-trade.cn",
        _credit_code("91310115MA1K4B2X3"),
        "上海市浦东新区张杨路 500 号 18 楼",
        "200000.00",
    ),
    (
        "C100002",
        "北京华信科技有限公司",
        "010-82561234",
        "caigou@huaxin-tech.com.cn",
        _credit_code("91110108MA01C7QJ2"),
        "北京市海淀区中关村大街 27 号",
        "500000.00",
    ),
    (
        "C100003",
        "深圳市前海宏达电子有限公司",
        "15989471236",
        "admin@hongda-sz.com",
        _credit_code("91440300MA5G8WLQ1"),
        "深圳市南山区前海深港合作区前湾一路 1 号",
        None,
    ),
    (
        "C100004",
        "杭州云帆文化传媒有限公司",
        "0571-87012345",
        "office@yunfan-media.cn",
        _credit_code("91330106MA2H0PD74"),
        "杭州市西湖区文三路 90 号",
        "50000.00",
    ),
    (
        "C100005",
        "Acme Trading (Shanghai) Co., Ltd.",
        "021-62345678",
        "procurement@acme-sh.example.com",
        _credit_code("91310000MA1FL3XK6"),
        "Room 1203, 88 Century Avenue, Pudong, Shanghai",
        "300000.00",
    ),
    (
        "C100006",
        "Northwind Office Solutions Ltd.",
        "18621005678",
        "orders@northwind.example.com",
        None,
        "Unit 5, 1 Jianguomenwai Ave, Chaoyang, Beijing",
        None,
    ),
    (
        "C100007",
        "成都锦程物流有限公司",
        "13708201357",
        None,
        _credit_code("91510100MA6CJ9RT8"),
        "成都市武侯区天府大道中段 666 号",
        "80000.00",
    ),
]

ORDERS = [  # external_ref, customer code, lines, how far it has gone
    ("SEED-CT-0001", "C100001", [("CHAIR-ERG-01", 20), ("DESK-1400", 10)], "pending_review"),
    ("SEED-CT-0002", "C100002", [("PRN-LJ-M404", 3), ("TONER-CF276A", 12)], "approved"),
    ("SEED-CT-0003", "C100005", [("PAPER-A4-70", 50), ("PEN-GEL-05", 30)], "paid"),
    ("SEED-CT-0004", "C100004", [("SHRED-S5", 2), ("CAB-FILE-4", 4)], "shipped"),
    ("SEED-CT-0005", "C100003", [("CHAIR-MTG-02", 40)], "cancelled"),
]


def _seed_order(db: Database, ref: str, code: str, lines: list[tuple[str, int]], stage: str) -> None:
    body = bodies.OrderIn(
        customer_code=code, external_ref=ref, lines=[bodies.OrderLineIn(sku=sku, qty=qty) for sku, qty in lines]
    )
    with db.write() as tx:
        order_id, is_created = orders.create_order(tx, body)
        if not is_created:
            return
        if stage == "cancelled":
            orders.cancel_order(tx, order_id, "客户取消：预算调整")
            return
        if stage == "pending_review":
            return
        orders.approve_order(tx, order_id)
        if stage in ("paid", "shipped"):
            order = orders.get_order(tx.conn, order_id)
            invoice_id = billing.issue_invoice(tx, order_id, None)
            billing.record_payment(
                tx,
                bodies.PaymentIn(
                    invoice_id=invoice_id,
                    amount=order.total,
                    method="bank_transfer",
                    reference=f"BANK-{ref}",
                ),
                idempotency_key=f"seed:{ref}",
            )
        if stage == "shipped":
            orders.ship_order(tx, order_id, "顺丰速运", "SF1402876453021")


def seed(db: Database) -> None:
    """Products, customers (Chinese and English names, valid phones and credit codes) and orders in every status."""
    db.create_schema()
    with db.write() as tx:
        for sku, name, unit, price in PRODUCTS:
            catalog.put_product(tx, sku, name, unit, Decimal(price))
        for code, name, phone, email, tax_id, address, limit in CUSTOMERS:
            exists = tx.conn.execute(select(schema.customers.c.id).where(schema.customers.c.code == code)).first()
            if exists is None:
                customers.create_customer(
                    tx,
                    bodies.CustomerIn(
                        code=code,
                        name=name,
                        phone=phone,
                        email=email,
                        tax_id=tax_id,
                        address=address,
                        credit_limit=Decimal(limit) if limit else None,
                    ),
                )
    for ref, code, lines, stage in ORDERS:
        _seed_order(db, ref, code, lines, stage)
