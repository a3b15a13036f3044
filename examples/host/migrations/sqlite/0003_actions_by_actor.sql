-- The console's "what I was shown": an actor's returned actions, newest first.
CREATE INDEX issued_actions_actor ON issued_actions (tenant, actor_id, decided_at);
