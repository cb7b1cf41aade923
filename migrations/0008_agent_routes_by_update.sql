-- GET /v1/agents lists a workspace's routes most recently changed first; this index serves
-- that order and its keyset seek without a sort.
CREATE INDEX agent_routes_by_update ON agent_routes (workspace_id, updated_at DESC, agent_id DESC);
