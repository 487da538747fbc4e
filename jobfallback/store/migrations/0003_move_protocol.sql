-- The move protocol of the revised design: intent marks, the destination version, an owner per
-- row (so a pass that lost its lock cannot write), backoff and parking. States are renamed so
-- that no name means two things ("created" was both a journal state and a run status).
ALTER TABLE moves
    ADD COLUMN destination_version double precision,
    ADD COLUMN owner text,
    ADD COLUMN trigger_sent_at timestamptz,
    ADD COLUMN terminate_sent_at timestamptz,
    ADD COLUMN next_attempt_at timestamptz;

ALTER TABLE moves DROP CONSTRAINT moves_state_valid;

UPDATE moves SET state = 'claimed' WHERE state = 'planned';
UPDATE moves SET state = 'deployed' WHERE state = 'created';
-- The first protocol marked a move skipped after one 404 on its source even when its copy was
-- running, and let a terminated copy look the same as a live one: a skipped row that holds a
-- destination run and does not say its copy was terminated is resumed, so the next pass settles it.
UPDATE moves SET state = 'failed', error = 'reconcile: skipped while its copy may be running'
WHERE state = 'skipped'
  AND destination_run_name IS NOT NULL
  AND coalesce(error, '') NOT LIKE '%destination copy was terminated%';

ALTER TABLE moves ADD CONSTRAINT moves_state_valid CHECK (
    state IN (
        'claimed', 'deployed', 'triggered', 'waiting', 'failed',
        'done', 'skipped', 'parked', 'abandoned'
    )
);

-- The sweep reads the moves that are due: resumable states whose next attempt has come.
CREATE INDEX moves_due ON moves (next_attempt_at) WHERE state IN (
    'claimed', 'deployed', 'triggered', 'waiting', 'failed'
);
