//! Inline SVG charts: stacked bars, drawn on the server, readable without JavaScript (each
//! segment has a `<title>` tooltip and the figures are in the table under the chart).

use std::fmt::Write as _;

/// Escapes text for HTML and SVG.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Colour-blind-friendly palette (Okabe–Ito), cycled.
const PALETTE: [&str; 8] = [
    "#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000",
];

/// The colour of series `i`.
pub fn colour(i: usize) -> &'static str {
    PALETTE[i % PALETTE.len()]
}

/// A stacked bar chart: one bar per category (x), one segment per series. `fmt` prints a value
/// for tooltips and the axis. Returns an `<svg>` element that scales to its container.
pub fn stacked_bars(
    title: &str,
    categories: &[String],
    series: &[(String, Vec<f64>)],
    fmt: &dyn Fn(f64) -> String,
) -> String {
    const W: f64 = 960.0;
    const H: f64 = 260.0;
    const LEFT: f64 = 70.0;
    const BOTTOM: f64 = 40.0;
    const TOP: f64 = 10.0;
    let n = categories.len().max(1);
    let totals: Vec<f64> = (0..categories.len())
        .map(|i| {
            series
                .iter()
                .map(|(_, v)| v.get(i).copied().unwrap_or(0.0))
                .sum()
        })
        .collect();
    let max = totals.iter().copied().fold(0.0f64, f64::max);
    let max = if max > 0.0 { max } else { 1.0 };
    let plot_w = W - LEFT - 10.0;
    let plot_h = H - TOP - BOTTOM;
    let slot = plot_w / n as f64;
    let bar = (slot * 0.8).max(1.0);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="chart" viewBox="0 0 {W} {H}" role="img" aria-label="{}" xmlns="http://www.w3.org/2000/svg" preserveAspectRatio="none">"#,
        esc(title)
    );
    // Axis: zero, half, max.
    for frac in [0.0, 0.5, 1.0] {
        let y = TOP + plot_h * (1.0 - frac);
        let _ = write!(
            s,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{}" y2="{y:.1}" stroke="#ccc" stroke-width="1"/><text x="{}" y="{:.1}" font-size="11" text-anchor="end" fill="#444">{}</text>"##,
            W - 10.0,
            LEFT - 4.0,
            y + 4.0,
            esc(&fmt(max * frac))
        );
    }
    for (i, cat) in categories.iter().enumerate() {
        let x = LEFT + slot * i as f64 + (slot - bar) / 2.0;
        let mut y = TOP + plot_h;
        for (k, (name, values)) in series.iter().enumerate() {
            let v = values.get(i).copied().unwrap_or(0.0);
            if v <= 0.0 {
                continue;
            }
            let h = plot_h * v / max;
            y -= h;
            let _ = write!(
                s,
                r#"<rect x="{x:.1}" y="{y:.1}" width="{bar:.1}" height="{h:.1}" fill="{}"><title>{} · {}: {}</title></rect>"#,
                colour(k),
                esc(cat),
                esc(name),
                esc(&fmt(v))
            );
        }
        // Label every few bars so labels never overlap.
        let every = n.div_ceil(10).max(1);
        if i.is_multiple_of(every) {
            let _ = write!(
                s,
                r##"<text x="{:.1}" y="{:.1}" font-size="11" text-anchor="middle" fill="#444">{}</text>"##,
                x + bar / 2.0,
                H - BOTTOM + 16.0,
                esc(cat)
            );
        }
    }
    s.push_str("</svg>");
    s
}

/// The legend of a chart's series, as HTML.
pub fn legend(series: &[String]) -> String {
    let mut s = String::from(r#"<ul class="legend">"#);
    for (i, name) in series.iter().enumerate() {
        let _ = write!(
            s,
            r#"<li><span class="swatch" style="background:{}"></span>{}</li>"#,
            colour(i),
            esc(name)
        );
    }
    s.push_str("</ul>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_are_as_tall_as_their_share_and_text_is_escaped() {
        let svg = stacked_bars(
            "t",
            &["d1".into(), "d2".into()],
            &[("<m>".into(), vec![1.0, 2.0]), ("n".into(), vec![1.0, 0.0])],
            &|v| format!("{v:.0}"),
        );
        assert!(svg.contains("&lt;m&gt;"), "{svg}");
        assert!(!svg.contains("<m>"), "{svg}");
        // d2 has the largest total (2): its bar spans the whole plot height (210).
        assert!(svg.contains(r#"height="210.0""#), "{svg}");
        assert_eq!(
            svg.matches("<rect").count(),
            3,
            "zero segments are not drawn"
        );
    }
}
