-- The move journal: one row per source run, so a move happens at most once across sweeps.
CREATE TABLE moves (
    source_run_id text PRIMARY KEY,
    source_run_name text NOT NULL,
    source_application_id text NOT NULL,
    source_application_name text NOT NULL,
    source_deployment_id text,
    -- No foreign key: a config may be removed later and its moves stay as history.
    config_id bigint,
    destination_workspace_fqn text NOT NULL,
    destination_application_id text,
    destination_deployment_id text,
    destination_run_name text,
    state text NOT NULL,
    error text,
    attempts integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT moves_state_valid
        CHECK (state IN ('planned', 'created', 'triggered', 'done', 'failed', 'skipped')),
    CONSTRAINT moves_attempts_non_negative CHECK (attempts >= 0)
);

-- The sweep resumes unfinished moves and `jobfallback history` filters by state, newest first.
CREATE INDEX moves_state_updated_at ON moves (state, updated_at);
