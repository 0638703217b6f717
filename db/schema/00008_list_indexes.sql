-- +goose Up
-- Every list route reads its pages newest first (created_at DESC, then the id ascending) and
-- starts each after the previous page's last row (keyset pagination, internal/sqlpage). Each
-- filter the routes offer gets an index led by the filtered column and followed by that
-- order, so that a filtered page is a range scan of the index that stops after limit rows,
-- never a scan of the table or a sort of every match, however many rows there are. The lists'
-- created_at indexes (00001, 00002, 00005, 00006) serve the unfiltered order and the
-- fromDate/toDate ranges; the id filters (txHash, verificationUuid, requestId) match a handful
-- of rows each and keep their own indexes.
--
-- The count (up to 10,001 matches) reads these indexes alone, an index-only scan, rather than
-- a heap page a match: hence INCLUDE of the column under each lower() (PostgreSQL takes an
-- index-only scan of an expression index only when the column itself is in the index too).
--
-- On a table of millions of rows each build takes a while and blocks writes to its table
-- meanwhile. Not CONCURRENTLY: that waits for every open snapshot, including a second
-- `enclave migrate` waiting for the migration lock, and the two would wait for each other
-- forever. An operator with large tables builds them beforehand, without blocking, with the
-- same statements written CREATE INDEX CONCURRENTLY IF NOT EXISTS (README "Lists at scale");
-- IF NOT EXISTS then makes this migration a no-op.
--
-- Cost: an index on status means a status change is no longer a HOT update of kyt_results,
-- screening_results and callbacks (their fillfactor 80 kept room for that): each change
-- writes an entry into every index of its table. It is the price of a status filter that
-- stays fast; README "Lists at scale" measures it.

-- GET /v1/verifications: role, symbol, network, originatingVaspId, beneficiaryVaspId (result
-- has its index in 00007).
CREATE INDEX IF NOT EXISTS verifications_role_idx ON verifications (role, created_at DESC, uuid);
CREATE INDEX IF NOT EXISTS verifications_asset_idx ON verifications (asset, created_at DESC, uuid);
CREATE INDEX IF NOT EXISTS verifications_network_idx ON verifications (network, created_at DESC, uuid);
CREATE INDEX IF NOT EXISTS verifications_originating_idx ON verifications (originating_vasp_id, created_at DESC, uuid);
CREATE INDEX IF NOT EXISTS verifications_beneficiary_idx ON verifications (beneficiary_vasp_id, created_at DESC, uuid);

-- GET /v1/risk-assessment/chainalysis-kyt: status, apiType, direction.
CREATE INDEX IF NOT EXISTS kyt_results_status_idx ON kyt_results (status, created_at DESC, request_id);
CREATE INDEX IF NOT EXISTS kyt_results_api_type_idx ON kyt_results (api_type, created_at DESC, request_id);
CREATE INDEX IF NOT EXISTS kyt_results_direction_idx ON kyt_results (direction, created_at DESC, request_id);

-- GET /v1/risk-assessment/chainalysis-kyt/alerts: level, source, alertStatus (any case).
CREATE INDEX IF NOT EXISTS kyt_alerts_level_idx ON kyt_alerts (alert_level, created_at DESC, alert_id);
CREATE INDEX IF NOT EXISTS kyt_alerts_source_idx ON kyt_alerts (source, created_at DESC, alert_id);
CREATE INDEX IF NOT EXISTS kyt_alerts_alert_status_idx ON kyt_alerts (lower(alert_status), created_at DESC, alert_id) INCLUDE (alert_status);

-- GET /v1/risk-assessment/chainalysis-address-screening: status, risk (any case).
CREATE INDEX IF NOT EXISTS screening_results_status_idx ON screening_results (status, created_at DESC, request_id);
CREATE INDEX IF NOT EXISTS screening_results_risk_idx ON screening_results (lower(risk), created_at DESC, request_id) INCLUDE (risk);

-- GET /v1/callbacks: status.
CREATE INDEX IF NOT EXISTS callbacks_status_idx ON callbacks (status, created_at DESC, id);

-- GET /v1/peer-messages: kind (status has its index in 00007).
CREATE INDEX IF NOT EXISTS peer_messages_kind_idx ON peer_messages (kind, created_at DESC, id);

-- +goose Down
DROP INDEX IF EXISTS peer_messages_kind_idx;
DROP INDEX IF EXISTS callbacks_status_idx;
DROP INDEX IF EXISTS screening_results_risk_idx;
DROP INDEX IF EXISTS screening_results_status_idx;
DROP INDEX IF EXISTS kyt_alerts_alert_status_idx;
DROP INDEX IF EXISTS kyt_alerts_source_idx;
DROP INDEX IF EXISTS kyt_alerts_level_idx;
DROP INDEX IF EXISTS kyt_results_direction_idx;
DROP INDEX IF EXISTS kyt_results_api_type_idx;
DROP INDEX IF EXISTS kyt_results_status_idx;
DROP INDEX IF EXISTS verifications_beneficiary_idx;
DROP INDEX IF EXISTS verifications_originating_idx;
DROP INDEX IF EXISTS verifications_network_idx;
DROP INDEX IF EXISTS verifications_asset_idx;
DROP INDEX IF EXISTS verifications_role_idx;
