//! Charts for the console, drawn on the server as inline SVG: no script and no inline
//! `style` (the console's content security policy forbids both), colours as presentation
//! attributes, text styled by `console.css`.
//!
//! Two kinds: horizontal bars (a label and a value per bar, largest first) and columns
//! over time (one per hour or day, in order). Every chart is an image for assistive
//! technology (`role="img"`), named by its `<title>` and described by a `<desc>` that
//! states the numbers; every bar has a `<title>` (a tooltip) and shows its value as text.
//! A chart with nothing to show says "No data in this period" instead. Labels come from
//! data (playbook ids, reasons) and are escaped here.

use std::fmt::{self, Write as _};

/// What a chart counts, in the singular and the plural.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unit {
    /// `decision`.
    pub one: &'static str,
    /// `decisions`.
    pub many: &'static str,
}

impl Unit {
    /// `1 decision`, `3 decisions`.
    pub fn count(self, n: i64) -> String {
        format!("{n} {}", if n == 1 { self.one } else { self.many })
    }
}

/// A chart's markup, escaped and ready to be placed in a page as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Svg(String);

impl Svg {
    /// The markup.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Svg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One column of a chart over time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// Under the column (`14`, `24`).
    pub tick: String,
    /// In its tooltip and the description (`2026-11-30 14:00`).
    pub name: String,
    /// Its value.
    pub value: i64,
}

/// What the chart says when there is nothing to show.
pub const EMPTY: &str = "No data in this period";

/// Bars' colour: the console's accent, 6.6:1 on white (WCAG AA asks 3:1 of graphics).
const BAR_FILL: &str = "#0a58ca";
/// Axis lines and text: the console's ink and muted grey, both above 4.5:1 on white.
const INK: &str = "#1b1f24";
const AXIS: &str = "#4a5360";

/// Longest label shown in full beside a bar; longer ones end in `…` (the tooltip and the
/// description keep the whole label).
const MAX_LABEL_CHARS: usize = 20;

// Horizontal bars: labels right-aligned before `BAR_X`, bars up to `BAR_MAX` wide, the
// value after the bar.
const BARS_WIDTH: i64 = 360;
const BAR_X: i64 = 140;
const BAR_MAX: i64 = 180;
const ROW: i64 = 28;
const BAR_H: i64 = 18;
const TOP: i64 = 8;

// Columns: the y axis at `COL_LEFT`, columns up to `PLOT_H` high in slots of `SLOT`.
const COL_LEFT: i64 = 56;
const SLOT: i64 = 32;
const COL_W: i64 = 22;
const PLOT_H: i64 = 160;
const COL_TOP: i64 = 22;

/// Escapes text for SVG (XML) content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
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

/// `value` scaled so that `max` is `full` (rounded); zero or less is zero.
pub fn scale(value: i64, max: i64, full: i64) -> i64 {
    if value <= 0 || max <= 0 {
        return 0;
    }
    let value = value.min(max);
    (value.saturating_mul(full) + max / 2) / max
}

fn shorten(label: &str) -> String {
    if label.chars().count() <= MAX_LABEL_CHARS {
        return label.to_owned();
    }
    let mut short: String = label.chars().take(MAX_LABEL_CHARS - 1).collect();
    short.push('…');
    short
}

/// The opening of a chart: the `svg` element, its title and description.
fn open(out: &mut String, id: &str, width: i64, height: i64, title: &str, desc: &str) {
    let id = escape(id);
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" aria-labelledby="{id}-title" aria-describedby="{id}-desc" viewBox="0 0 {width} {height}" width="{width}" height="{height}" fill="{INK}">"#
    );
    let _ = write!(
        out,
        r#"<title id="{id}-title">{}</title><desc id="{id}-desc">{}</desc>"#,
        escape(title),
        escape(desc)
    );
}

/// The chart that says there is nothing to show.
fn empty(id: &str, title: &str) -> Svg {
    let mut out = String::new();
    open(&mut out, id, BARS_WIDTH, 40, title, &format!("{EMPTY}."));
    let _ = write!(
        out,
        r#"<text class="empty" x="8" y="25">{EMPTY}</text></svg>"#
    );
    Svg(out)
}

/// A horizontal bar chart of `(label, value)`, largest first (equal values by label):
/// the largest bar is full width, a zero bar has no width. Negative values count as zero.
pub fn bars(id: &str, title: &str, unit: Unit, axis: &str, data: &[(String, i64)]) -> Svg {
    let mut rows: Vec<(&str, i64)> = data
        .iter()
        .map(|(l, v)| (l.as_str(), (*v).max(0)))
        .collect();
    rows.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    let total: i64 = rows.iter().map(|r| r.1).sum();
    if total == 0 {
        return empty(id, title);
    }
    let max = rows.first().map_or(0, |r| r.1);
    let parts: Vec<String> = rows.iter().map(|(l, v)| format!("{l} {v}")).collect();
    let desc = format!("{} in all: {}.", unit.count(total), parts.join(", "));
    let n = i64::try_from(rows.len()).unwrap_or(i64::MAX / ROW);
    let plot_bottom = TOP + n * ROW;
    let height = plot_bottom + 34;
    let mut out = String::new();
    open(&mut out, id, BARS_WIDTH, height, title, &desc);
    for (i, (label, value)) in (0_i64..).zip(&rows) {
        let y = TOP + i * ROW;
        let width = scale(*value, max, BAR_MAX);
        let text_y = y + ROW / 2 + 4;
        let _ = write!(
            out,
            r#"<g class="bar"><title>{}: {}</title><text x="{}" y="{text_y}" text-anchor="end">{}</text><rect x="{BAR_X}" y="{}" width="{width}" height="{BAR_H}" fill="{BAR_FILL}"/><text class="value" x="{}" y="{text_y}">{value}</text></g>"#,
            escape(label),
            escape(&unit.count(*value)),
            BAR_X - 8,
            escape(&shorten(label)),
            y + (ROW - BAR_H) / 2,
            BAR_X + width + 6,
        );
    }
    let _ = write!(
        out,
        r#"<line x1="{BAR_X}" y1="{TOP}" x2="{BAR_X}" y2="{plot_bottom}" stroke="{AXIS}"/><text class="axis" x="{}" y="{}" text-anchor="middle">{}</text></svg>"#,
        BAR_X + BAR_MAX / 2,
        plot_bottom + 22,
        escape(axis),
    );
    Svg(out)
}

/// A column chart over time, columns in the order given: the largest column is full
/// height, a zero column has no height. `bucket` names a column's span (`hour`, `day`)
/// for the description; `axis` labels the time axis.
pub fn columns(
    id: &str,
    title: &str,
    unit: Unit,
    bucket: Unit,
    axis: &str,
    data: &[Column],
) -> Svg {
    let total: i64 = data.iter().map(|c| c.value.max(0)).sum();
    if total == 0 {
        return empty(id, title);
    }
    let max = data.iter().map(|c| c.value).max().unwrap_or(0);
    let busy: Vec<String> = data
        .iter()
        .filter(|c| c.value > 0)
        .map(|c| format!("{}: {}", c.name, c.value))
        .collect();
    let mut desc = format!("{} in all. {}.", unit.count(total), busy.join("; "));
    if busy.len() < data.len() {
        let _ = write!(desc, " Every other {}: 0.", bucket.one);
    }
    let n = i64::try_from(data.len()).unwrap_or(0);
    let base = COL_TOP + PLOT_H;
    let width = COL_LEFT + n * SLOT + 8;
    let height = base + 44;
    let mut out = String::new();
    open(&mut out, id, width, height, title, &desc);
    // The value axis: 0 and the largest value, and what is counted.
    let _ = write!(
        out,
        r#"<line x1="{COL_LEFT}" y1="{COL_TOP}" x2="{COL_LEFT}" y2="{base}" stroke="{AXIS}"/><line x1="{COL_LEFT}" y1="{base}" x2="{}" y2="{base}" stroke="{AXIS}"/><text class="axis" x="{}" y="{}" text-anchor="end">0</text><text class="axis" x="{}" y="{}" text-anchor="end">{max}</text><text class="axis" x="14" y="{}" text-anchor="middle" transform="rotate(-90 14 {})">{}</text>"#,
        width - 4,
        COL_LEFT - 6,
        base + 4,
        COL_LEFT - 6,
        COL_TOP + 4,
        COL_TOP + PLOT_H / 2,
        COL_TOP + PLOT_H / 2,
        escape(&capitalised(unit.many)),
    );
    for (i, c) in (0_i64..).zip(data) {
        let x = COL_LEFT + 6 + i * SLOT;
        let h = scale(c.value, max, PLOT_H);
        let centre = x + COL_W / 2;
        let _ = write!(
            out,
            r#"<g class="column"><title>{}: {}</title><rect x="{x}" y="{}" width="{COL_W}" height="{h}" fill="{BAR_FILL}"/><text class="value" x="{centre}" y="{}" text-anchor="middle">{}</text><text class="tick" x="{centre}" y="{}" text-anchor="middle">{}</text></g>"#,
            escape(&c.name),
            escape(&unit.count(c.value.max(0))),
            base - h,
            base - h - 4,
            c.value.max(0),
            base + 16,
            escape(&c.tick),
        );
    }
    let _ = write!(
        out,
        r#"<text class="axis" x="{}" y="{}" text-anchor="middle">{}</text></svg>"#,
        COL_LEFT + (n * SLOT) / 2,
        base + 36,
        escape(axis),
    );
    Svg(out)
}

fn capitalised(word: &str) -> String {
    let mut chars = word.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_uppercase().chain(chars).collect()
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    const ACTIONS: Unit = Unit {
        one: "action",
        many: "actions",
    };
    const HOUR: Unit = Unit {
        one: "hour",
        many: "hours",
    };

    fn data(pairs: &[(&str, i64)]) -> Vec<(String, i64)> {
        pairs.iter().map(|(l, v)| ((*l).to_owned(), *v)).collect()
    }

    /// The `width` of each bar's `rect`, in order.
    fn widths(svg: &Svg, attr: &str) -> Vec<i64> {
        svg.as_str()
            .split("<rect ")
            .skip(1)
            .map(|r| {
                let at = r.find(&format!(" {attr}=\"")).unwrap() + attr.len() + 3;
                r[at..r[at..].find('"').unwrap() + at].parse().unwrap()
            })
            .collect()
    }

    fn column(tick: &str, value: i64) -> Column {
        Column {
            tick: tick.to_owned(),
            name: format!("2026-11-30 {tick}:00"),
            value,
        }
    }

    #[test]
    fn labels_from_data_are_escaped() {
        let svg = bars(
            "chart-x",
            "Actions <by> type",
            ACTIONS,
            "Actions",
            &data(&[("<script>alert('x')</script>&\"", 2)]),
        );
        let s = svg.as_str();
        assert!(!s.contains("<script"), "{s}");
        assert!(
            s.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;"),
            "{s}"
        );
        assert!(s.contains("<title id=\"chart-x-title\">Actions &lt;by&gt; type</title>"));
        let cols = columns(
            "c",
            "t",
            ACTIONS,
            HOUR,
            "Hour & <UTC>",
            &[Column {
                tick: "<b>".to_owned(),
                name: "\"n\"".to_owned(),
                value: 1,
            }],
        );
        assert!(!cols.as_str().contains("<b>"), "{cols}");
        assert!(cols.as_str().contains("Hour &amp; &lt;UTC&gt;"));
        assert!(cols.as_str().contains("&quot;n&quot;: 1 action"));
        assert_eq!(escape("a&b<c>d\"e'f"), "a&amp;b&lt;c&gt;d&quot;e&#39;f");
    }

    #[test]
    fn empty_data_says_so_instead_of_drawing_a_chart() {
        for svg in [
            bars("e", "Actions by type", ACTIONS, "Actions", &[]),
            bars(
                "e",
                "Actions by type",
                ACTIONS,
                "Actions",
                &data(&[("mirror", 0)]),
            ),
            columns("e", "Decisions", ACTIONS, HOUR, "Hour", &[]),
            columns("e", "Decisions", ACTIONS, HOUR, "Hour", &[column("01", 0)]),
        ] {
            let s = svg.as_str();
            assert!(
                s.contains("<text class=\"empty\" x=\"8\" y=\"25\">No data in this period</text>"),
                "{s}"
            );
            assert!(
                s.contains("<desc id=\"e-desc\">No data in this period.</desc>"),
                "{s}"
            );
            assert!(s.contains("role=\"img\""));
            assert!(!s.contains("<rect"), "{s}");
        }
    }

    #[test]
    fn the_largest_bar_fills_the_width_and_zero_is_zero() {
        let svg = bars(
            "b",
            "t",
            ACTIONS,
            "Actions",
            &data(&[("small", 1), ("none", 0), ("large", 4), ("half", 2)]),
        );
        // Largest first; equal values by label.
        assert_eq!(
            widths(&svg, "width"),
            vec![BAR_MAX, BAR_MAX / 2, BAR_MAX / 4, 0]
        );
        let s = svg.as_str();
        let order: Vec<usize> = ["large", "half", "small", "none"]
            .iter()
            .map(|l| s.find(&format!("<title>{l}:")).unwrap())
            .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{s}");
        assert!(s.contains("<title>large: 4 actions</title>"));
        assert!(s.contains("<title>small: 1 action</title>"));
        assert!(s.contains(">4</text>"), "each bar shows its value");
        assert!(s.contains("7 actions in all: large 4, half 2, small 1, none 0."));

        let cols = columns(
            "c",
            "t",
            ACTIONS,
            HOUR,
            "Hour (UTC)",
            &[
                column("00", 0),
                column("01", 3),
                column("02", 1),
                column("03", -2),
            ],
        );
        assert_eq!(widths(&cols, "height"), vec![0, PLOT_H, 53, 0]);
        assert!(cols.as_str().contains(
            "4 actions in all. 2026-11-30 01:00: 3; 2026-11-30 02:00: 1. Every other hour: 0."
        ));
        assert_eq!(scale(5, 5, 300), 300);
        assert_eq!(scale(0, 5, 300), 0);
        assert_eq!(scale(1, 0, 300), 0);
        assert_eq!(scale(1, 3, 300), 100);
    }

    #[test]
    fn the_same_data_draws_the_same_chart() {
        let a = data(&[("mirror", 3), ("mentor", 1), ("multiplier", 1)]);
        let mut b = a.clone();
        b.reverse();
        let first = bars("d", "t", ACTIONS, "Actions", &a);
        assert_eq!(first, bars("d", "t", ACTIONS, "Actions", &a));
        assert_eq!(
            first,
            bars("d", "t", ACTIONS, "Actions", &b),
            "order of input does not matter"
        );
        let cols = [column("00", 1), column("01", 2)];
        assert_eq!(
            columns("c", "t", ACTIONS, HOUR, "Hour", &cols),
            columns("c", "t", ACTIONS, HOUR, "Hour", &cols)
        );
    }

    #[test]
    fn no_inline_style_and_long_labels_are_shortened() {
        let long = "a-playbook-id-that-is-much-longer-than-the-label-column";
        let svg = bars("s", "t", ACTIONS, "Actions", &data(&[(long, 1)]));
        let s = svg.as_str();
        assert!(!s.contains("style"), "{s}");
        assert!(s.contains(&format!("<title>{long}: 1 action</title>")));
        assert!(s.contains(">a-playbook-id-that-…</text>"), "{s}");
        let cols = columns("c", "t", ACTIONS, HOUR, "Hour", &[column("00", 1)]);
        assert!(!cols.as_str().contains("style"));
    }
}
