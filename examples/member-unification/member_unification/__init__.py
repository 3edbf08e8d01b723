"""The member-unification example: a retail chain's members in its POS, web shop and CRM, unified."""
