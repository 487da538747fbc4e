-- Fallback configs: which source cluster/workspace (optionally one job) falls back to which destination.
-- Every rule lives here as a named constraint so jobfallback/store/constraints.py can explain it.
CREATE TABLE fallback_configs (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name text,
    source_cluster_id text NOT NULL,
    source_workspace_id text NOT NULL,
    source_job_id text,  -- NULL: a generic config for every job of the source workspace
    destination_cluster_id text NOT NULL,
    destination_workspace_id text NOT NULL,
    -- NULL: not looked up yet (stored without an API token); every sweep skips the config until
    -- `jobfallback configs backfill-fqn` fills it.
    destination_workspace_fqn text,
    enabled boolean NOT NULL DEFAULT true,
    stuck_threshold_minutes integer,  -- NULL: the global JOB_FALLBACK_STUCK_THRESHOLD_MINUTES
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    -- A CHECK on NULL passes, so the nullable columns are checked only when set.
    CONSTRAINT fallback_configs_name_not_blank CHECK (length(trim(name)) > 0),
    CONSTRAINT fallback_configs_source_cluster_id_not_blank CHECK (length(trim(source_cluster_id)) > 0),
    CONSTRAINT fallback_configs_source_workspace_id_not_blank
        CHECK (length(trim(source_workspace_id)) > 0),
    CONSTRAINT fallback_configs_source_job_id_not_blank CHECK (length(trim(source_job_id)) > 0),
    CONSTRAINT fallback_configs_destination_cluster_id_not_blank
        CHECK (length(trim(destination_cluster_id)) > 0),
    CONSTRAINT fallback_configs_destination_workspace_id_not_blank
        CHECK (length(trim(destination_workspace_id)) > 0),
    CONSTRAINT fallback_configs_destination_workspace_fqn_not_blank
        CHECK (length(trim(destination_workspace_fqn)) > 0),
    CONSTRAINT fallback_configs_distinct_workspaces
        CHECK (source_workspace_id <> destination_workspace_id),
    CONSTRAINT fallback_configs_threshold_range CHECK (stuck_threshold_minutes BETWEEN 1 AND 525600)
);

-- The natural key (FallbackConfigSpec.natural_key): one job-specific config per (workspace, job) ...
CREATE UNIQUE INDEX fallback_configs_job_key
    ON fallback_configs (source_workspace_id, source_job_id)
    WHERE source_job_id IS NOT NULL;

-- ... and one generic config per (source workspace, destination workspace).
CREATE UNIQUE INDEX fallback_configs_generic_key
    ON fallback_configs (source_workspace_id, destination_workspace_id)
    WHERE source_job_id IS NULL;
