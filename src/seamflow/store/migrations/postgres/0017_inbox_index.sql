-- An approver's inbox (`list_tasks`: assignee, status, newest first, ties by id) is read in the
-- index's order and stops at the page's end: the index has the whole ORDER BY, directions included,
-- so neither backend sorts every task of a busy approver, nor joins more approvals than it lists.
DROP INDEX tasks_assignee;
CREATE INDEX tasks_inbox ON tasks (assignee, status, created_ms DESC, id);
