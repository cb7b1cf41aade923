-- The never reused name a sealed webhook or endpoint secret's encryption binds, as a provider
-- key's binds its KV blob name: an endpoint's version restarts at 1 after a removal, so
-- (workspace, version) alone could be reused. NULL: sealed before names were bound; the
-- scheduled handler's re-wrap gives such a secret a name and binds it.
ALTER TABLE webhook_secrets ADD COLUMN sealed_name TEXT;
ALTER TABLE notification_endpoints ADD COLUMN sealed_name TEXT;
