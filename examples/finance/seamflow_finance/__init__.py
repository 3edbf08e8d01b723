"""A small finance system (财务系统) for the reimbursement example: payments recorded once per reference."""
