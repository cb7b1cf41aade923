-- Why a key was revoked, where that matters later: 'leaked' for a leak report, so that a
-- retried report of the same token labels it true_positive again. NULL: not revoked, or
-- revoked another way (the API, a webhook, a reroll), which a leak report labels false_positive.
ALTER TABLE api_keys ADD COLUMN revoked_reason TEXT;
