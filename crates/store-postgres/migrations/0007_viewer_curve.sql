-- Viewers over each program (`step_seconds:p1,p2,…`, the peak of each step), for the
-- chart on my channel.
ALTER TABLE program_stats ADD COLUMN viewer_curve TEXT NOT NULL DEFAULT '';
