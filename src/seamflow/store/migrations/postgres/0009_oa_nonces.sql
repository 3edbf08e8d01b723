-- Seamflow schema 9: the nonces of OA approval callbacks (DingTalk, WeCom, Feishu), each held until
-- its trigger's max_age has passed, so the same signed request delivered twice is refused by every
-- process of the cluster (oa.replayed). Expired rows are deleted by later claims.

CREATE TABLE oa_nonces (
    nonce_key       TEXT PRIMARY KEY,
    until_ms        BIGINT NOT NULL
);
CREATE INDEX oa_nonces_until ON oa_nonces (until_ms);
