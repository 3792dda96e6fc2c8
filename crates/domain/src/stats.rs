//! What the stream node measures of a program, kept when the reservation completes.

/// What the stream node measured of one program.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProgramStats {
    /// Most viewers at the same time.
    pub peak_viewers: u32,
    /// Distinct viewers (play sessions).
    pub unique_viewers: u32,
    /// Minutes watched, summed over viewers.
    pub viewer_minutes: u64,
    /// Bytes sent to viewers.
    pub bytes_out: u64,
    /// Seconds the program was on air.
    pub seconds_on_air: u64,
    /// Viewers over the program, from its start.
    pub curve: ViewerCurve,
}

impl ProgramStats {
    /// The totals of one program measured on several nodes (its origin and the edges that
    /// relay it): counts, minutes and bytes add up, the time on air is the longest, and
    /// the curves add up step by step at the coarser step of the two. The peak is the
    /// highest step of the summed curve (never less than either node's own peak), so it
    /// is exact to a step: two nodes' peaks within one step count as simultaneous.
    pub fn merge(&self, other: &ProgramStats) -> ProgramStats {
        let curve = self.curve.add(&other.curve);
        let peak = curve.points.iter().copied().max().unwrap_or(0);
        ProgramStats {
            peak_viewers: peak.max(self.peak_viewers).max(other.peak_viewers),
            unique_viewers: self.unique_viewers.saturating_add(other.unique_viewers),
            viewer_minutes: self.viewer_minutes.saturating_add(other.viewer_minutes),
            bytes_out: self.bytes_out.saturating_add(other.bytes_out),
            seconds_on_air: self.seconds_on_air.max(other.seconds_on_air),
            curve,
        }
    }
}

/// Most points a viewer curve keeps: past that, neighbouring points merge (their peak)
/// and the step doubles, so a curve stays small whatever the program's length.
pub const CURVE_POINTS: usize = 240;

/// Viewers over a program: the most viewers at once in each step from the start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ViewerCurve {
    /// Seconds a point covers.
    pub step_seconds: u32,
    /// The peak of each step, in order.
    pub points: Vec<u32>,
}

impl ViewerCurve {
    /// The stored form, `step:p1,p2,…` (empty for no curve).
    pub fn encode(&self) -> String {
        if self.points.is_empty() {
            return String::new();
        }
        let points: Vec<String> = self.points.iter().map(u32::to_string).collect();
        format!("{}:{}", self.step_seconds, points.join(","))
    }

    /// Reads [`ViewerCurve::encode`]'s form; `None` when it is not that.
    pub fn decode(s: &str) -> Option<ViewerCurve> {
        if s.is_empty() {
            return Some(ViewerCurve::default());
        }
        let (step, points) = s.split_once(':')?;
        let curve = ViewerCurve {
            step_seconds: step.parse().ok().filter(|s| *s > 0)?,
            points: points
                .split(',')
                .map(|p| p.parse().ok())
                .collect::<Option<Vec<u32>>>()?,
        };
        (curve.points.len() <= CURVE_POINTS).then_some(curve)
    }
}

impl ViewerCurve {
    /// This curve at a step `factor` times as long (each point the peak of those it covers).
    fn coarsened(&self, factor: usize) -> Vec<u32> {
        self.points
            .chunks(factor.max(1))
            .map(|c| c.iter().copied().max().unwrap_or(0))
            .collect()
    }

    /// The viewers of two nodes together: summed step by step at the coarser step (steps
    /// are 10 s doubled, so one divides the other; otherwise the coarser is used as is).
    pub fn add(&self, other: &ViewerCurve) -> ViewerCurve {
        if self.points.is_empty() {
            return other.clone();
        }
        if other.points.is_empty() {
            return self.clone();
        }
        let step = self.step_seconds.max(other.step_seconds);
        let at_step = |c: &ViewerCurve| c.coarsened((step / c.step_seconds.max(1)) as usize);
        let (a, b) = (at_step(self), at_step(other));
        let points = (0..a.len().max(b.len()))
            .map(|i| {
                let v = |p: &Vec<u32>| p.get(i).copied().unwrap_or(0);
                v(&a).saturating_add(v(&b))
            })
            .take(CURVE_POINTS)
            .collect();
        ViewerCurve {
            step_seconds: step,
            points,
        }
    }
}

/// Builds a [`ViewerCurve`] from the viewer counts seen at times (milliseconds from the
/// start, never decreasing): each step keeps its peak, and a step without a sample the
/// count it started with.
#[derive(Debug, Clone)]
pub struct CurveBuilder {
    step_ms: u64,
    points: Vec<u32>,
    now: u32,
}

impl Default for CurveBuilder {
    fn default() -> Self {
        CurveBuilder::new(10_000)
    }
}

impl CurveBuilder {
    /// Steps of `step_ms` to begin with (doubled as the program grows).
    pub fn new(step_ms: u64) -> CurveBuilder {
        CurveBuilder {
            step_ms: step_ms.max(1_000),
            points: Vec::new(),
            now: 0,
        }
    }

    /// `viewers` watch from `at_ms` on.
    pub fn record(&mut self, at_ms: u64, viewers: u32) {
        self.reach(at_ms);
        if let Some(last) = self.points.last_mut() {
            *last = (*last).max(viewers);
        }
        self.now = viewers;
    }

    /// Extends the curve to `at_ms` with the current count.
    fn reach(&mut self, at_ms: u64) {
        let mut index = usize::try_from(at_ms / self.step_ms).unwrap_or(usize::MAX);
        while index >= CURVE_POINTS {
            self.coarsen();
            index = usize::try_from(at_ms / self.step_ms).unwrap_or(usize::MAX);
        }
        while self.points.len() <= index {
            self.points.push(self.now);
        }
    }

    /// Merges neighbouring points and doubles the step.
    fn coarsen(&mut self) {
        self.points = self
            .points
            .chunks(2)
            .map(|pair| pair.iter().copied().max().unwrap_or(0))
            .collect();
        self.step_ms *= 2;
    }

    /// The curve up to `end_ms`.
    pub fn finish(mut self, end_ms: u64) -> ViewerCurve {
        if end_ms > 0 {
            self.reach(end_ms.saturating_sub(1));
        }
        if self.points.is_empty() {
            // Nothing measured: the curve of no time, the same as its stored form.
            return ViewerCurve::default();
        }
        ViewerCurve {
            step_seconds: u32::try_from(self.step_ms / 1000).unwrap_or(u32::MAX),
            points: self.points,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_step_keeps_its_peak_and_quiet_steps_carry_the_count() {
        let mut b = CurveBuilder::new(10_000);
        b.record(0, 1);
        b.record(4_000, 3);
        b.record(6_000, 2);
        b.record(35_000, 0);
        let c = b.finish(50_000);
        assert_eq!(c.step_seconds, 10);
        assert_eq!(c.points, vec![3, 2, 2, 2, 0]);
    }

    #[test]
    fn a_long_program_stays_small() {
        let mut b = CurveBuilder::new(10_000);
        for s in 0..36_000u64 {
            b.record(s * 1000, u32::try_from(s % 7).unwrap());
        }
        b.record(20_000_000, 9);
        let c = b.finish(36_000_000);
        assert!(c.points.len() <= CURVE_POINTS, "{}", c.points.len());
        assert!(c.points.contains(&9), "the peak survives merging");
        assert!(u64::from(c.step_seconds) * c.points.len() as u64 >= 36_000);
    }

    #[test]
    fn a_program_of_no_time_has_no_curve() {
        let c = CurveBuilder::new(10_000).finish(0);
        assert_eq!(c, ViewerCurve::default());
        assert_eq!(ViewerCurve::decode(&c.encode()), Some(c));
    }

    #[test]
    fn totals_of_two_nodes_add_up_at_the_coarser_step() {
        let origin = ProgramStats {
            peak_viewers: 3,
            unique_viewers: 4,
            viewer_minutes: 30,
            bytes_out: 1000,
            seconds_on_air: 60,
            curve: ViewerCurve {
                step_seconds: 10,
                points: vec![1, 3, 2, 2, 0],
            },
        };
        let edge = ProgramStats {
            peak_viewers: 2,
            unique_viewers: 2,
            viewer_minutes: 10,
            bytes_out: 500,
            seconds_on_air: 58,
            curve: ViewerCurve {
                step_seconds: 20,
                points: vec![2, 1],
            },
        };
        let both = origin.merge(&edge);
        assert_eq!(both.curve.step_seconds, 20);
        assert_eq!(both.curve.points, vec![5, 3, 0]);
        assert_eq!(both.peak_viewers, 5);
        assert_eq!(both.unique_viewers, 6);
        assert_eq!(both.viewer_minutes, 40);
        assert_eq!(both.bytes_out, 1500);
        assert_eq!(both.seconds_on_air, 60);
        assert_eq!(both, edge.merge(&origin), "the order does not matter");
        assert_eq!(origin.merge(&ProgramStats::default()).curve, origin.curve);
    }

    #[test]
    fn the_stored_form_reads_back() {
        let c = ViewerCurve {
            step_seconds: 20,
            points: vec![0, 4, 7, 1],
        };
        assert_eq!(c.encode(), "20:0,4,7,1");
        assert_eq!(ViewerCurve::decode(&c.encode()), Some(c));
        assert_eq!(ViewerCurve::decode(""), Some(ViewerCurve::default()));
        for bad in ["x", "0:1", "10:1,,2", "10:-1", ":"] {
            assert_eq!(ViewerCurve::decode(bad), None, "{bad}");
        }
    }
}
