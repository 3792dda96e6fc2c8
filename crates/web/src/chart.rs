//! The chart of viewers over a program: an SVG drawn on the server (no script, no inline
//! style: the stylesheet colours it), a step line from the start to the end with the
//! peak marked, and the same figures as a table for those who cannot see it.

use slotcast_domain::ViewerCurve;

/// Width and height of the drawing, in its own units.
const W: u32 = 600;
const H: u32 = 180;
/// Room for the axis labels.
const LEFT: u32 = 36;
const BOTTOM: u32 = 22;
const TOP: u32 = 10;

/// Escapes text for SVG.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// One point of the chart's table: minutes from the start, viewers.
pub struct Row {
    /// `+mm:ss`.
    pub at: String,
    /// The peak of that step.
    pub viewers: u32,
}

/// A chart: the drawing (to embed as it is) and its table.
pub struct Chart {
    /// The SVG element.
    pub svg: String,
    /// The same figures, a row per step.
    pub rows: Vec<Row>,
}

/// The chart of `curve`; `None` for a program without one. `label` names it for screen
/// readers; `start` and `end` label the time axis.
pub fn draw(curve: &ViewerCurve, label: &str, start: &str, end: &str) -> Option<Chart> {
    let n = curve.points.len();
    if n == 0 {
        return None;
    }
    let peak = curve.points.iter().copied().max().unwrap_or(0).max(1);
    let (plot_w, plot_h) = (W - LEFT - 4, H - TOP - BOTTOM);
    let x = |i: usize| f64::from(LEFT) + f64::from(plot_w) * i as f64 / n as f64;
    let y = |v: u32| f64::from(TOP) + f64::from(plot_h) * (1.0 - f64::from(v) / f64::from(peak));
    let mut path = format!("M{:.1},{:.1}", x(0), y(curve.points[0]));
    for (i, v) in curve.points.iter().enumerate() {
        path.push_str(&format!(" V{:.1} H{:.1}", y(*v), x(i + 1)));
    }
    let area = format!("{path} V{:.1} H{:.1} Z", f64::from(TOP + plot_h), x(0));
    let base = TOP + plot_h;
    let svg = format!(
        r#"<svg class="chart" viewBox="0 0 {W} {H}" role="img" aria-label="{label}" preserveAspectRatio="none">
<line class="axis" x1="{LEFT}" y1="{base}" x2="{right}" y2="{base}"/>
<line class="grid" x1="{LEFT}" y1="{TOP}" x2="{right}" y2="{TOP}"/>
<text class="tick" x="{lx}" y="{ty}" text-anchor="end">{peak}</text>
<text class="tick" x="{lx}" y="{base}" text-anchor="end">0</text>
<path class="area" d="{area}"/>
<path class="line" d="{path}"/>
<text class="tick" x="{LEFT}" y="{by}">{start}</text>
<text class="tick" x="{right}" y="{by}" text-anchor="end">{end}</text>
</svg>"#,
        label = esc(label),
        right = W - 4,
        lx = LEFT - 6,
        ty = TOP + 8,
        by = H - 4,
        start = esc(start),
        end = esc(end),
    );
    let step = u64::from(curve.step_seconds);
    let rows = curve
        .points
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let s = step * i as u64;
            Row {
                at: format!("+{}:{:02}", s / 60, s % 60),
                viewers: *v,
            }
        })
        .collect();
    Some(Chart { svg, rows })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chart_draws_every_step_up_to_the_peak_and_escapes_its_labels() {
        let curve = ViewerCurve {
            step_seconds: 30,
            points: vec![0, 2, 4, 1],
        };
        let Chart { svg, rows } = draw(&curve, "Viewers <of> \"it\"", "12:00", "12:02").unwrap();
        assert!(
            svg.contains(r#"aria-label="Viewers &lt;of&gt; &quot;it&quot;""#),
            "{svg}"
        );
        assert!(svg.contains(">4</text>"), "the peak on the axis: {svg}");
        assert_eq!(
            svg.matches(" H").count(),
            2 * 4 + 1,
            "a step per point, twice (line and area), and the area's base"
        );
        assert_eq!(rows[2].at, "+1:00");
        assert_eq!(rows[2].viewers, 4);
        assert!(draw(&ViewerCurve::default(), "x", "a", "b").is_none());
    }
}
