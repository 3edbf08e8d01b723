-- Seamflow: a user's ids on the company's IM platforms, for approval notices and card clicks.
-- A JSON object such as {"dingtalk": "manager4220", "wecom": "ZhangWei", "feishu": "5d9bdxxx"};
-- a platform not named there addresses the user by their login.
ALTER TABLE users ADD COLUMN im_ids TEXT NOT NULL DEFAULT '{}';
