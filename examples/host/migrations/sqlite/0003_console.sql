-- The console's "what I was shown": an actor's returned actions, newest first.
CREATE INDEX issued_actions_actor ON issued_actions (tenant, actor_id, decided_at);
-- The console's tenant overview: the tenant's open approvals, soonest to expire first.
CREATE INDEX approvals_open ON approvals (tenant, state, expires_at);
