//! Charts drawn on the server as inline SVG, for the admin dashboard.
//!
//! No JavaScript and no inline `style` (the content security policy forbids both): the SVG uses
//! presentation attributes (`stroke`, `fill`, `font-size`) in `currentColor`, and classes that
//! `static/app.css` may colour. The functions are pure: numbers and labels in, markup out. Every
//! piece of text that reaches the markup goes through [`escape`], which is what makes it safe
//! for a template to insert the result unescaped.

use std::fmt::Write;

/// The drawing's coordinate system (`viewBox`); it scales to its container.
const WIDTH: f64 = 520.0;
const HEIGHT: f64 = 220.0;
/// Room for the y tick labels on the left and the date labels below.
const LEFT: f64 = 48.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 28.0;
/// At most this many intervals on the y axis, and this many date labels.
const Y_INTERVALS: u128 = 5;
const X_LABELS: usize = 4;

/// A line chart of one value per day: `days[i]` is the label of `values[i]` (extra entries of
/// the longer slice are ignored). Draws the y axis with round ticks from 0, a few date labels,
/// the line and a point per day (hovering one shows its date and value). `title` becomes the
/// SVG's `<title>` and the start of its `aria-label`, which also says the period, the total and
/// the peak, so a screen reader gets the gist. Negative values are drawn as 0.
pub fn line_chart(title: &str, days: &[String], values: &[i64]) -> String {
    let n = days.len().min(values.len());
    let (days, values) = (&days[..n], &values[..n]);
    let values: Vec<i64> = values.iter().map(|value| (*value).max(0)).collect();
    let peak = values.iter().copied().max().unwrap_or(0);
    let (top, step) = y_scale(peak);

    let plot_width = WIDTH - LEFT - RIGHT;
    let plot_height = HEIGHT - TOP - BOTTOM;
    let bottom = TOP + plot_height;
    let x = |i: usize| {
        if n <= 1 {
            LEFT + plot_width / 2.0
        } else {
            LEFT + plot_width * i as f64 / (n - 1) as f64
        }
    };
    // `top` is at least 1, so this never divides by zero.
    let y = |value: i64| bottom - plot_height * (value as f64 / top as f64);

    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" role="img" aria-label="{}">"#,
        escape(&summary(title, days, &values)),
    );
    let _ = write!(svg, "<title>{}</title>", escape(title));

    // Horizontal grid lines with their values.
    svg.push_str(r#"<g class="chart-grid" stroke="currentColor" stroke-opacity="0.15">"#);
    let ticks: Vec<i64> = std::iter::successors(Some(0i64), |tick| tick.checked_add(step))
        .take_while(|tick| *tick <= top)
        .collect();
    for tick in &ticks {
        let _ = write!(
            svg,
            r#"<line x1="{LEFT}" y1="{y:.1}" x2="{right}" y2="{y:.1}"/>"#,
            y = y(*tick),
            right = WIDTH - RIGHT,
        );
    }
    svg.push_str("</g>");
    svg.push_str(r#"<g class="chart-labels" fill="currentColor" font-size="13">"#);
    for tick in &ticks {
        let _ = write!(
            svg,
            r#"<text x="{x}" y="{y:.1}" text-anchor="end" dominant-baseline="middle">{label}</text>"#,
            x = LEFT - 6.0,
            y = y(*tick),
            label = group_thousands(*tick),
        );
    }
    for i in label_indices(n) {
        let anchor = match i {
            0 if n > 1 => "start",
            i if i + 1 == n && n > 1 => "end",
            _ => "middle",
        };
        let _ = write!(
            svg,
            r#"<text x="{x:.1}" y="{y}" text-anchor="{anchor}">{label}</text>"#,
            x = x(i),
            y = HEIGHT - 8.0,
            label = escape(&days[i]),
        );
    }
    svg.push_str("</g>");

    // The axes.
    let _ = write!(
        svg,
        r#"<path class="chart-axis" d="M{LEFT} {TOP}V{bottom}H{right}" fill="none" stroke="currentColor" stroke-opacity="0.6"/>"#,
        right = WIDTH - RIGHT,
    );

    if n == 0 {
        let _ = write!(
            svg,
            r#"<text x="{x}" y="{y}" text-anchor="middle" fill="currentColor" font-size="14">No data</text>"#,
            x = LEFT + plot_width / 2.0,
            y = TOP + plot_height / 2.0,
        );
    } else {
        let points: Vec<String> = values
            .iter()
            .enumerate()
            .map(|(i, value)| format!("{:.1},{:.1}", x(i), y(*value)))
            .collect();
        let _ = write!(
            svg,
            r#"<polyline class="chart-line" points="{}" fill="none" stroke="currentColor" stroke-width="2" stroke-linejoin="round"/>"#,
            points.join(" "),
        );
        // Fewer, smaller dots on long periods so that the line stays readable.
        let radius = if n > 45 { 1.5 } else { 3.0 };
        svg.push_str(r#"<g class="chart-points" fill="currentColor">"#);
        for (i, value) in values.iter().enumerate() {
            let _ = write!(
                svg,
                r#"<circle cx="{x:.1}" cy="{y:.1}" r="{radius}"><title>{day}: {value}</title></circle>"#,
                x = x(i),
                y = y(*value),
                day = escape(&days[i]),
                value = group_thousands(*value),
            );
        }
        svg.push_str("</g>");
    }
    svg.push_str("</svg>");
    svg
}

/// The accessible summary: "Sign-ups, 2026-11-01 to 2026-11-30: 42 in all, at most 7 a day
/// (2026-11-12)".
fn summary(title: &str, days: &[String], values: &[i64]) -> String {
    let (Some(first), Some(last)) = (days.first(), days.last()) else {
        return format!("{title}: no data");
    };
    let total = values.iter().fold(0i64, |sum, v| sum.saturating_add(*v));
    let period = if first == last {
        first.clone()
    } else {
        format!("{first} to {last}")
    };
    let peak = values
        .iter()
        .enumerate()
        .max_by_key(|(i, value)| (**value, std::cmp::Reverse(*i)));
    match peak {
        Some((i, value)) if *value > 0 => format!(
            "{title}, {period}: {} in all, at most {} a day ({})",
            group_thousands(total),
            group_thousands(*value),
            days[i]
        ),
        _ => format!("{title}, {period}: none"),
    }
}

/// The top of the y axis and the distance between ticks for data peaking at `peak`: a round
/// step (1, 2 or 5 times a power of ten) with at most [`Y_INTERVALS`] intervals, and a top of at
/// least 1 so that an all-zero series still has a scale (and nothing divides by zero).
fn y_scale(peak: i64) -> (i64, i64) {
    let peak = u128::try_from(peak.max(1)).unwrap_or(1);
    let mut magnitude: u128 = 1;
    loop {
        for factor in [1, 2, 5] {
            let step = magnitude * factor;
            let intervals = peak.div_ceil(step);
            if intervals <= Y_INTERVALS {
                let top = (intervals * step).min(i64::MAX as u128);
                return (top as i64, step.min(i64::MAX as u128) as i64);
            }
        }
        magnitude *= 10;
    }
}

/// Indices of the days that get a label: all of them when few, else about [`X_LABELS`] evenly
/// spread, always including the first and the last.
fn label_indices(n: usize) -> Vec<usize> {
    if n <= X_LABELS {
        return (0..n).collect();
    }
    let mut indices: Vec<usize> = (0..X_LABELS)
        .map(|k| k * (n - 1) / (X_LABELS - 1))
        .collect();
    indices.dedup();
    indices
}

/// `12345` as `12,345`.
fn group_thousands(value: i64) -> String {
    let digits = value.unsigned_abs().to_string();
    let mut grouped = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    if value < 0 {
        grouped.insert(0, '-');
    }
    grouped
}

/// Escapes text for XML content and attribute values (double- or single-quoted).
pub fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    fn days(n: usize) -> Vec<String> {
        (1..=n).map(|d| format!("2026-11-{d:02}")).collect()
    }

    fn polyline_points(svg: &str) -> usize {
        let start = svg.find("points=\"").expect("a polyline") + "points=\"".len();
        let end = svg[start..].find('"').unwrap() + start;
        svg[start..end].split(' ').count()
    }

    #[test]
    fn draws_one_point_per_day() {
        let svg = line_chart("Logins", &days(30), &[1; 30]);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert_eq!(polyline_points(&svg), 30);
        assert_eq!(svg.matches("<circle").count(), 30);
    }

    #[test]
    fn is_labelled_for_assistive_technology() {
        let svg = line_chart("Sign-ups", &days(3), &[0, 5, 2]);
        assert!(svg.contains(r#"role="img""#));
        assert!(svg.contains("<title>Sign-ups</title>"));
        assert!(svg.contains(
            r#"aria-label="Sign-ups, 2026-11-01 to 2026-11-03: 7 in all, at most 5 a day (2026-11-02)""#
        ));
    }

    #[test]
    fn escapes_every_label() {
        let hostile = r#"<script>alert("x")</script> & 'q'"#;
        let svg = line_chart(hostile, &[hostile.to_owned()], &[1]);
        assert!(!svg.contains("<script>"));
        assert!(!svg.contains(r#""x""#));
        assert!(svg.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;q&#39;"));
    }

    #[test]
    fn an_all_zero_series_has_a_scale_and_no_nan() {
        let svg = line_chart("CV edits", &days(30), &[0; 30]);
        assert_eq!(polyline_points(&svg), 30);
        assert!(!svg.contains("NaN") && !svg.contains("inf"));
        assert!(svg.contains(">0</text>") && svg.contains(">1</text>"));
        assert!(svg.contains("CV edits, 2026-11-01 to 2026-11-30: none"));
    }

    #[test]
    fn an_empty_series_says_so() {
        let svg = line_chart("Logins", &[], &[]);
        assert!(svg.contains("No data"));
        assert!(!svg.contains("<polyline"));
        assert!(!svg.contains("NaN"));
        assert!(svg.contains(r#"aria-label="Logins: no data""#));
    }

    #[test]
    fn a_single_day_is_drawn_in_the_middle() {
        let svg = line_chart("Logins", &days(1), &[4]);
        assert_eq!(polyline_points(&svg), 1);
        assert!(!svg.contains("NaN"));
    }

    #[test]
    fn mismatched_lengths_use_the_shorter() {
        let svg = line_chart("Logins", &days(5), &[1, 2, 3]);
        assert_eq!(polyline_points(&svg), 3);
    }

    #[test]
    fn the_y_axis_has_round_ticks_covering_the_peak() {
        assert_eq!(y_scale(0), (1, 1));
        assert_eq!(y_scale(3), (3, 1));
        assert_eq!(y_scale(7), (8, 2));
        assert_eq!(y_scale(23), (25, 5));
        assert_eq!(y_scale(1234), (1500, 500));
        let (top, step) = y_scale(i64::MAX);
        assert!(top >= step && step > 0);
        let svg = line_chart("Logins", &days(2), &[0, 1234]);
        assert!(svg.contains(">1,500</text>") && svg.contains(">500</text>"));
    }

    #[test]
    fn a_few_dates_are_labelled_including_both_ends() {
        assert_eq!(label_indices(3), vec![0, 1, 2]);
        assert_eq!(label_indices(5), vec![0, 1, 2, 4]);
        assert_eq!(label_indices(90), vec![0, 29, 59, 89]);
        assert_eq!(label_indices(30), vec![0, 9, 19, 29]);
        let svg = line_chart("Logins", &days(30), &[1; 30]);
        assert!(svg.contains(">2026-11-01</text>") && svg.contains(">2026-11-30</text>"));
    }

    #[test]
    fn uses_no_inline_style() {
        let svg = line_chart("Logins", &days(30), &[3; 30]);
        assert!(!svg.contains("style="));
    }

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(group_thousands(0), "0");
        assert_eq!(group_thousands(999), "999");
        assert_eq!(group_thousands(1000), "1,000");
        assert_eq!(group_thousands(-1234567), "-1,234,567");
    }
}
