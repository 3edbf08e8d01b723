"""Where a connection points, as messages show it: env filled in, user, password and query left out, secrets masked."""

from __future__ import annotations

from seamflow import engine


def test_the_address_of_a_connection_names_host_and_path_but_no_credentials() -> None:
    pool = engine.Pool(
        {
            "erp": {"connector": "sql", "url": "postgresql://erp_user:Kd93-xP2q@10.8.0.12:5432/erp?sslmode=require"},
            "crm": {"connector": "openapi", "document": "{{ env.CRM_URL }}/openapi.json?api_key={{ secrets.crm_key }}"},
            "mailer": {"connector": "email", "host": "smtp.exmail.qq.com", "port": 465},
            "bare": {"connector": "http"},
        },
        secrets={"crm_key": "ck-7f3e9a1b2c"},
        env={"CRM_URL": "https://crm.huadong.example.cn"},
    )
    assert pool.address_of("erp") == "postgresql://10.8.0.12:5432/erp"
    assert pool.address_of("crm") == "https://crm.huadong.example.cn/openapi.json"
    assert pool.address_of("mailer") == "smtp.exmail.qq.com:465"
    assert pool.address_of("bare") is None
    assert pool.address_of("unknown") is None
