-- A program relayed by edge nodes is measured on each node that served it: the totals
-- a node hands over are kept per node, and the center adds them up.
CREATE TABLE node_totals_per_node (
    reservation_id  BIGINT NOT NULL REFERENCES reservations (id),
    node            TEXT NOT NULL,
    peak_viewers    BIGINT NOT NULL,
    unique_viewers  BIGINT NOT NULL,
    viewer_minutes  BIGINT NOT NULL,
    bytes_out       BIGINT NOT NULL,
    seconds_on_air  BIGINT NOT NULL,
    viewer_curve    TEXT NOT NULL,
    PRIMARY KEY (reservation_id, node)
);
INSERT INTO node_totals_per_node
    SELECT reservation_id, '', peak_viewers, unique_viewers, viewer_minutes, bytes_out,
           seconds_on_air, viewer_curve
    FROM node_totals;
DROP TABLE node_totals;
ALTER TABLE node_totals_per_node RENAME TO node_totals;
