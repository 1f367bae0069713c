-- Seqs a device reported as held back (covered, expected later) and as forgotten on purpose
-- (covered, never coming): JSON arrays of inclusive [from, to] ranges, like `covered`.
ALTER TABLE devices ADD COLUMN held TEXT NOT NULL DEFAULT '[]';
ALTER TABLE devices ADD COLUMN forgotten TEXT NOT NULL DEFAULT '[]';
