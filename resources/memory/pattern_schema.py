"""The pattern store's SQL: semantic patterns, the per-partition observations they are derived from,
and the evidence events each observation cites (its rows: `pattern_records.py`).

`PatternStore` (resources/memory/pattern_store.py) is the only owner of these tables and the only caller of
this SQL. A pattern is never edited in place: its title, kind, confidence, centroid embedding, support
and first/last seen are recomputed from its remaining observations (`RECOMPUTE_PATTERNS`), so the stored
state is a function of the observations alone and re-running a partition converges to the same rows.
"""

from __future__ import annotations

from psycopg import sql

from resources.memory.schema import EVENTS

PATTERNS = "semantic_patterns"
OBSERVATIONS = "pattern_observations"
EVIDENCE = "pattern_evidence"
SUPERSESSIONS = "pattern_supersessions"
ANSWERS = "consolidation_answers"


def schema_statements(schema: str) -> list[sql.Composable]:
    """Idempotent DDL of the pattern tables; the memory store's tables must exist first."""
    patterns, observations, evidence, supersessions = (
        sql.Identifier(schema, name) for name in (PATTERNS, OBSERVATIONS, EVIDENCE, SUPERSESSIONS)
    )
    events = sql.Identifier(schema, EVENTS)
    return [
        sql.SQL(
            """CREATE TABLE IF NOT EXISTS {} (
                pattern_id text PRIMARY KEY,
                title text NOT NULL,
                description text NOT NULL,
                kind text NOT NULL,
                confidence double precision NOT NULL CHECK (confidence BETWEEN 0 AND 1),
                support integer NOT NULL,
                first_seen timestamptz,
                last_seen timestamptz,
                descriptions jsonb NOT NULL DEFAULT '[]'::jsonb,
                model_sha256 text NOT NULL,
                dimension integer NOT NULL CHECK (dimension > 0),
                embedding vector NOT NULL,
                evidence_centroid vector NOT NULL,
                CHECK (vector_dims(embedding) = dimension)
            )"""
        ).format(patterns),
        sql.SQL(
            """CREATE TABLE IF NOT EXISTS {} (
                day date NOT NULL,
                cluster_key text NOT NULL,
                pattern_index integer NOT NULL,
                pattern_id text NOT NULL REFERENCES {} (pattern_id) ON DELETE CASCADE,
                title text NOT NULL,
                description text NOT NULL,
                kind text NOT NULL,
                confidence double precision NOT NULL CHECK (confidence BETWEEN 0 AND 1),
                model_sha256 text NOT NULL,
                dimension integer NOT NULL CHECK (dimension > 0),
                embedding vector NOT NULL,
                evidence_centroid vector NOT NULL,
                prompt_version text NOT NULL,
                cluster_size integer NOT NULL,
                PRIMARY KEY (day, cluster_key, pattern_index),
                CHECK (vector_dims(embedding) = dimension)
            )"""
        ).format(observations, patterns),
        sql.SQL("CREATE INDEX IF NOT EXISTS pattern_observations_pattern_idx ON {} (pattern_id)").format(
            observations
        ),
        # Added with the gate (tables made before it hold model answers only, hence the default).
        sql.SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS method text NOT NULL DEFAULT 'llm'").format(
            patterns
        ),
        sql.SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS method text NOT NULL DEFAULT 'llm'").format(
            observations
        ),
        sql.SQL(
            """CREATE TABLE IF NOT EXISTS {} (
                day date NOT NULL,
                cluster_key text NOT NULL,
                pattern_index integer NOT NULL,
                event_id text NOT NULL REFERENCES {} (id) ON DELETE CASCADE,
                pattern_id text NOT NULL REFERENCES {} (pattern_id) ON DELETE CASCADE,
                PRIMARY KEY (day, cluster_key, pattern_index, event_id),
                FOREIGN KEY (day, cluster_key, pattern_index) REFERENCES {} ON DELETE CASCADE
            )"""
        ).format(evidence, events, patterns, observations),
        sql.SQL("CREATE INDEX IF NOT EXISTS pattern_evidence_pattern_idx ON {} (pattern_id)").format(
            evidence
        ),
        sql.SQL("CREATE INDEX IF NOT EXISTS pattern_evidence_event_idx ON {} (event_id)").format(evidence),
        # Validity (added with supersession): patterns made before it start current.
        sql.SQL(
            "ALTER TABLE {} ADD COLUMN IF NOT EXISTS valid_from timestamptz, "
            "ADD COLUMN IF NOT EXISTS valid_to timestamptz, ADD COLUMN IF NOT EXISTS superseded_by text"
        ).format(patterns),
        sql.SQL("UPDATE {} SET valid_from = first_seen WHERE valid_from IS NULL").format(patterns),
        # An observation of a day that replaces an older pattern: recorded beside the observation (and
        # removed with it), so a pattern's validity is recomputed from the observations like the rest.
        sql.SQL(
            """CREATE TABLE IF NOT EXISTS {} (
                day date NOT NULL,
                cluster_key text NOT NULL,
                pattern_index integer NOT NULL,
                old_pattern_id text NOT NULL REFERENCES {} (pattern_id) ON DELETE CASCADE,
                changed_at timestamptz NOT NULL,
                changed_event_id text NOT NULL,
                PRIMARY KEY (day, cluster_key, pattern_index, old_pattern_id),
                FOREIGN KEY (day, cluster_key, pattern_index) REFERENCES {} ON DELETE CASCADE
            )"""
        ).format(supersessions, patterns, observations),
        sql.SQL("CREATE INDEX IF NOT EXISTS pattern_supersessions_old_idx ON {} (old_pattern_id)").format(
            supersessions
        ),
        # llama-server at temperature 0 is not bit-reproducible (a reused prompt cache shifts the numerics),
        # so the answer to an exact request is kept and a re-run reuses it.
        sql.SQL(
            """CREATE TABLE IF NOT EXISTS {} (
                request_sha256 text PRIMARY KEY,
                cluster_key text NOT NULL,
                prompt_version text NOT NULL,
                answer jsonb NOT NULL,
                output_tokens integer NOT NULL,
                recorded_at timestamptz NOT NULL DEFAULT now()
            )"""
        ).format(sql.Identifier(schema, ANSWERS)),
    ]


# The rows one observation writes (table names are formatted in as identifiers by the store).
INSERT_PATTERN = """INSERT INTO {} (pattern_id, title, description, kind, confidence, support,
        model_sha256, dimension, embedding, evidence_centroid, method)
    VALUES (%s, %s, %s, %s, %s, 1, %s, %s, %s, %s, %s)"""
INSERT_OBSERVATION = """INSERT INTO {} (day, cluster_key, pattern_index, pattern_id, title, description,
        kind, confidence, model_sha256, dimension, embedding, evidence_centroid, prompt_version, cluster_size,
        method)
    VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"""
INSERT_EVIDENCE = """INSERT INTO {} (day, cluster_key, pattern_index, event_id, pattern_id)
    VALUES (%s, %s, %s, %s, %s)"""
INSERT_SUPERSESSION = """INSERT INTO {} (day, cluster_key, pattern_index, old_pattern_id, changed_at,
        changed_event_id)
    VALUES (%s, %s, %s, %s, %s, %s)"""

EVENT_VECTORS = """SELECT e.id, e.day, e.occurred_at, e.content, x.embedding AS vector, e.event_type
    FROM {events} AS e JOIN {emb} AS x
      ON x.event_id = e.id AND x.model_sha256 = %s AND x.content_sha256 = e.content_sha256
    WHERE e.day BETWEEN %s AND %s ORDER BY e.occurred_at, e.id"""

# Ordered aggregates: the same observations always sum in the same order, so a recomputed centroid and
# confidence are bit-for-bit what they were (a re-run must leave identical rows, not merely close ones).
RECOMPUTE_PATTERNS = """UPDATE {patterns} AS p SET
        title = s.title, description = s.description, kind = s.kind, confidence = s.confidence,
        method = s.method,
        support = s.support, descriptions = s.descriptions, model_sha256 = s.model_sha256,
        dimension = s.dimension, embedding = s.embedding, evidence_centroid = s.evidence_centroid,
        first_seen = t.first_seen, last_seen = t.last_seen
    FROM (
        SELECT o.pattern_id,
               (array_agg(o.title ORDER BY o.day, o.cluster_key, o.pattern_index))[1] AS title,
               (array_agg(o.description ORDER BY o.day, o.cluster_key, o.pattern_index))[1] AS description,
               (array_agg(o.kind ORDER BY o.day, o.cluster_key, o.pattern_index))[1] AS kind,
               (array_agg(o.method ORDER BY o.day, o.cluster_key, o.pattern_index))[1] AS method,
               (array_agg(o.model_sha256 ORDER BY o.day, o.cluster_key, o.pattern_index))[1] AS model_sha256,
               (array_agg(o.dimension ORDER BY o.day, o.cluster_key, o.pattern_index))[1] AS dimension,
               avg(o.confidence ORDER BY o.day, o.cluster_key, o.pattern_index) AS confidence,
               avg(o.embedding ORDER BY o.day, o.cluster_key, o.pattern_index) AS embedding,
               avg(o.evidence_centroid ORDER BY o.day, o.cluster_key, o.pattern_index) AS evidence_centroid,
               count(DISTINCT (o.day, o.cluster_key))::int AS support,
               jsonb_agg(jsonb_build_object('day', o.day, 'title', o.title, 'description', o.description,
                                            'prompt_version', o.prompt_version, 'method', o.method)
                         ORDER BY o.day, o.cluster_key, o.pattern_index) AS descriptions
        FROM {observations} AS o WHERE o.pattern_id = ANY(%(ids)s) GROUP BY o.pattern_id
    ) AS s
    LEFT JOIN (
        SELECT v.pattern_id, min(e.occurred_at) AS first_seen, max(e.occurred_at) AS last_seen
        FROM {evidence} AS v JOIN {events} AS e ON e.id = v.event_id
        WHERE v.pattern_id = ANY(%(ids)s) GROUP BY v.pattern_id
    ) AS t ON t.pattern_id = s.pattern_id
    WHERE p.pattern_id = s.pattern_id"""

# What the two queries of current patterns below share: a pattern's counts, evidence and its latest
# 20 evidence contents, among patterns of earlier days that no change recorded earlier closed.
_CURRENT_HEAD = """SELECT p.pattern_id, p.title, p.description, p.kind, p.confidence, p.method,
        count(DISTINCT v.event_id) FILTER (WHERE v.event_id = ANY(%(ids)s))::int AS shared,
        count(DISTINCT v.event_id)::int AS evidence,
"""
_CURRENT_TAIL = """        array_agg(DISTINCT v.event_id ORDER BY v.event_id) AS evidence_ids,
        ARRAY(SELECT e.content FROM {events} AS e WHERE e.id = ANY(array_agg(v.event_id))
              ORDER BY e.occurred_at DESC, e.id LIMIT 20) AS recent_evidence
    FROM {evidence} AS v JOIN {patterns} AS p ON p.pattern_id = v.pattern_id
    WHERE v.day < %(day)s AND p.model_sha256 = %(model)s AND p.dimension = %(dim)s
      AND NOT EXISTS (SELECT 1 FROM {supersessions} AS s
                      WHERE s.old_pattern_id = p.pattern_id AND s.day < %(day)s)
    GROUP BY p.pattern_id
"""
_SUBJECT_SIMILARITY = "greatest(1 - (p.embedding <=> %(v)s), 1 - (p.evidence_centroid <=> %(c)s))"

# Current patterns of days before %(day)s citing most of the given events (ties: more support, then smaller
# id). Only earlier days count, so re-running a day finds what its first run found; "current" means no
# change recorded on an earlier day closed it (the recording day, not the change's time, for the same reason).
KNOWN_PATTERN = (
    _CURRENT_HEAD
    + "        (1 - (p.evidence_centroid <=> %(c)s))::float8 AS similarity,\n"
    + _CURRENT_TAIL
    + "    ORDER BY shared DESC, p.evidence_centroid <=> %(c)s, p.pattern_id LIMIT %(limit)s"
)

# Current patterns of days before %(day)s about the same subject as a new pattern: its text or its
# evidence close to theirs. The candidates a change may close.
SUBJECT_PATTERNS = (
    _CURRENT_HEAD
    + f"        {_SUBJECT_SIMILARITY}::float8 AS similarity,\n"
    + _CURRENT_TAIL
    + f"    HAVING {_SUBJECT_SIMILARITY} >= %(threshold)s\n"
    + "    ORDER BY similarity DESC, p.pattern_id LIMIT %(limit)s"
)

# Of some events, those cited by a pattern that an observation of a day before %(day)s replaced. Both
# the citation and the replacement come from earlier days, so re-running a day, or a later one, gives the
# same answer.
REPLACED_EVIDENCE = """SELECT DISTINCT v.event_id FROM {evidence} AS v
    JOIN {supersessions} AS s ON s.old_pattern_id = v.pattern_id
    WHERE v.event_id = ANY(%(ids)s) AND v.day < %(day)s AND s.day < %(day)s"""

# The nearest pattern of the same embedding model whose text is alike AND whose evidence events are alike:
# a small model gives unrelated clusters the same generic title, and text alone would merge them. Ties go
# to the smaller id, so matching is deterministic. A pattern closed by this day or an earlier one, or one
# the observation replaces, is never reinforced.
NEAREST_PATTERN = """SELECT p.pattern_id FROM {patterns} AS p
    WHERE p.model_sha256 = %(model)s AND p.dimension = %(dim)s
      AND 1 - (p.embedding <=> %(v)s) >= %(text)s AND 1 - (p.evidence_centroid <=> %(c)s) >= %(evidence)s
      AND NOT p.pattern_id = ANY(%(replaced)s)
      AND NOT EXISTS (SELECT 1 FROM {supersessions} AS s
                      WHERE s.old_pattern_id = p.pattern_id AND s.day <= %(day)s)
    ORDER BY p.embedding <=> %(v)s, p.pattern_id LIMIT 1"""

# Validity from the recorded changes: a replaced pattern is valid until the earliest change (and names the
# pattern that replaced it); a replacing pattern is valid from its first evidence event that the patterns
# it replaced do not cite (the event that states the change, not the old events it was clustered with).
VALIDITY = """WITH replaced AS (
        SELECT o.pattern_id AS new_id, s.old_pattern_id AS old_id, s.changed_at
        FROM {supersessions} AS s JOIN {observations} AS o USING (day, cluster_key, pattern_index)
        WHERE o.pattern_id <> s.old_pattern_id
    ), closing AS (
        SELECT DISTINCT ON (old_id) old_id, changed_at, new_id FROM replaced
        ORDER BY old_id, changed_at, new_id
    ), opening AS (
        SELECT v.pattern_id, min(e.occurred_at) AS valid_from
        FROM {evidence} AS v JOIN {events} AS e ON e.id = v.event_id
        WHERE v.pattern_id IN (SELECT new_id FROM replaced)
          AND NOT EXISTS (SELECT 1 FROM replaced AS r JOIN {evidence} AS w ON w.pattern_id = r.old_id
                          WHERE r.new_id = v.pattern_id AND w.event_id = v.event_id)
        GROUP BY v.pattern_id
    )
    UPDATE {patterns} AS p SET valid_to = c.changed_at, superseded_by = c.new_id,
        valid_from = coalesce(o.valid_from, p.first_seen)
    FROM {patterns} AS q LEFT JOIN closing AS c ON c.old_id = q.pattern_id
        LEFT JOIN opening AS o ON o.pattern_id = q.pattern_id
    WHERE p.pattern_id = q.pattern_id"""

# Current patterns (valid_to null); with %(as_of)s those valid at that moment; with %(all)s every one.
LIST_PATTERNS = """SELECT pattern_id, title, description, kind, confidence, support, first_seen, last_seen,
        method, descriptions, valid_from, valid_to, superseded_by
    FROM {patterns} WHERE (%(since)s::timestamptz IS NULL OR last_seen >= %(since)s)
      AND (%(all)s OR CASE WHEN %(as_of)s::timestamptz IS NULL THEN valid_to IS NULL
                           ELSE valid_from < %(as_of)s AND (valid_to IS NULL OR valid_to >= %(as_of)s) END)
    ORDER BY support DESC, confidence DESC, last_seen DESC, pattern_id"""

LIST_EVIDENCE = """SELECT DISTINCT v.pattern_id, e.id AS event_id, e.occurred_at, e.content
    FROM {evidence} AS v JOIN {events} AS e ON e.id = v.event_id
    WHERE v.pattern_id = ANY(%s) ORDER BY v.pattern_id, e.occurred_at, e.id"""

PATTERN_CHECK = """SELECT
        (SELECT count(*) FROM {patterns})::int AS patterns,
        (SELECT count(*) FROM {patterns} AS p
          WHERE NOT EXISTS (SELECT 1 FROM {evidence} AS v WHERE v.pattern_id = p.pattern_id))::int
          AS without_evidence,
        (SELECT count(*) FROM {observations} WHERE day = %(day)s)::int AS day_observations,
        (SELECT count(*) FROM {evidence} AS v JOIN {events} AS e ON e.id = v.event_id
          WHERE v.day = %(day)s AND e.day NOT BETWEEN %(first)s AND %(day)s)::int
          AS evidence_outside_window,
        (SELECT coalesce(sum(n - 1), 0) FROM (
            SELECT count(*) AS n FROM (
                SELECT cluster_key, array_agg(event_id ORDER BY event_id) AS ids FROM {evidence}
                WHERE day = %(day)s GROUP BY cluster_key, pattern_index
            ) AS o GROUP BY cluster_key, ids
        ) AS g)::int AS same_evidence_duplicates"""
