-- Issue 14: fallback chains, opt-outs, manifest patches and the circuit breaker. An expand: every
-- new column has a default or is nullable, and the one index rewritten accepts more rows.

-- A source's configs form an ordered chain: lowest priority first, then the oldest (lowest id).
ALTER TABLE fallback_configs
    ADD COLUMN priority integer NOT NULL DEFAULT 0,
    ADD COLUMN exclude_job_ids text[] NOT NULL DEFAULT '{}',
    ADD COLUMN manifest_patch jsonb,
    ADD CONSTRAINT fallback_configs_priority_range CHECK (priority BETWEEN 0 AND 1000),
    ADD CONSTRAINT fallback_configs_manifest_patch_object
        CHECK (manifest_patch IS NULL OR jsonb_typeof(manifest_patch) = 'object');

-- One job may now fall back along a chain of destinations: one job-specific config per
-- (source workspace, job, destination workspace). Same name, so older code's message still fits.
DROP INDEX fallback_configs_job_key;
CREATE UNIQUE INDEX fallback_configs_job_key
    ON fallback_configs (source_workspace_id, source_job_id, destination_workspace_id)
    WHERE source_job_id IS NOT NULL;

-- The patch a move applied to its copy's manifest, as it was when the move was claimed: a
-- resumed move deploys the same manifest even if its config changed since.
ALTER TABLE moves ADD COLUMN manifest_patch jsonb;

-- Cooldown: a job's recent moves; `explain RUN` by a run's name.
CREATE INDEX moves_source_application ON moves (source_application_id, created_at);
CREATE INDEX moves_source_run_name ON moves (source_run_name);

-- One row per real pass: the circuit breaker reads the last few.
CREATE TABLE sweep_passes (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    shard text NOT NULL DEFAULT '',  -- '' unsharded, else INDEX/COUNT
    finished_at timestamptz NOT NULL DEFAULT now(),
    started integer NOT NULL DEFAULT 0,  -- moves and resumes that ran
    failed integer NOT NULL DEFAULT 0,
    breaker_tripped boolean NOT NULL DEFAULT false
);
CREATE INDEX sweep_passes_shard_finished ON sweep_passes (shard, finished_at DESC);
