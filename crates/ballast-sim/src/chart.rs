//! Charts of backtest timelines, as SVG or PNG.
//!
//! A chart has two panels that share the time axis:
//!
//! - the top panel draws the demand (load units per second, a filled grey area) against the
//!   ready capacity (`ready × capacity`) of every controller, one coloured line each;
//! - the bottom panel draws the ready replicas of every controller in the same colours, with
//!   the `required` count of the first series as a thin dashed black reference line.
//!
//! The time axis counts hours since the start of the trace, or days when the trace is longer
//! than three days. Long traces are downsampled before drawing: every line keeps, per bucket
//! of consecutive ticks, its largest value, so a peak never disappears from the picture.
//!
//! The SVG is drawn with `plotters`; the PNG is that SVG rasterised by `resvg`, with the
//! system fonts loaded so the text shows (without any font installed the PNG is still made,
//! only without text).

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use plotters::chart::MeshStyle;
use plotters::coord::Shift;
use plotters::coord::ranged1d::ValueFormatter;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use resvg::usvg::fontdb;
use resvg::{tiny_skia, usvg};

use crate::timeline::TimelineRow;

/// The default of [`ChartOptions::max_points`].
pub const DEFAULT_MAX_POINTS: usize = 2000;

/// Seconds in an hour.
const HOUR_S: f64 = 3600.0;
/// Seconds in a day.
const DAY_S: f64 = 86_400.0;
/// Traces longer than this many days get a time axis in days instead of hours.
const DAYS_AXIS_AFTER: f64 = 3.0;

/// Smallest width accepted, in pixels.
const MIN_WIDTH: u32 = 320;
/// Smallest height accepted, in pixels.
const MIN_HEIGHT: u32 = 240;

/// Width of the area left of both panels that holds the y labels and description; the same
/// for both panels so their plotting areas line up on the shared time axis.
const Y_LABEL_AREA: u32 = 72;
/// Height of the area under the bottom panel that holds the time labels and description.
const X_LABEL_AREA: u32 = 46;
/// Margins around both panels, in pixels.
const MARGIN_LEFT: u32 = 12;
const MARGIN_RIGHT: u32 = 28;

/// Font sizes, in SVG pixels.
const TITLE_PX: f64 = 20.0;
const LEGEND_PX: f64 = 14.0;
const CAPTION_PX: f64 = 14.0;
const LABEL_PX: f64 = 12.0;
const AXIS_DESC_PX: f64 = 13.0;

/// Rough advance of one character of a sans-serif font, as a share of the font size; used to
/// lay the legend out, since the real width is only known once a font is picked.
const CHAR_WIDTH_EM: f64 = 0.58;

/// Line colours of the series, in order (the Tableau 10 palette without its grey, which is
/// kept for the demand and the reference line).
const PALETTE: [RGBColor; 9] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];
/// Fill and outline of the demand area.
const DEMAND_FILL: RGBColor = RGBColor(190, 190, 190);
const DEMAND_LINE: RGBColor = RGBColor(110, 110, 110);
/// Colour and dashes of the `required` reference line. Plotters draws a dashed line as one
/// element per dash, which grows the SVG by hundreds of kilobytes on a jagged line, so the
/// line is drawn solid in a colour used for nothing else and [`dash_reference_lines`] turns
/// that colour into the real one with a `stroke-dasharray`.
const REQUIRED_MARKER: RGBColor = RGBColor(1, 2, 3);
const REQUIRED_STROKE: &str = r##"stroke="#000000" stroke-dasharray="5 3""##;
const REQUIRED_WIDTH: u32 = 1;
/// Grid colours.
const GRID_BOLD: RGBColor = RGBColor(215, 215, 215);
const GRID_LIGHT: RGBColor = RGBColor(238, 238, 238);

/// Font families tried, in order, for the generic `sans-serif` family of the PNG renderer.
const SANS_SERIF_FAMILIES: [&str; 9] = [
    "DejaVu Sans",
    "Liberation Sans",
    "Noto Sans",
    "Arial",
    "Helvetica",
    "Helvetica Neue",
    "FreeSans",
    "Open Sans",
    "Roboto",
];

/// One controller's timeline to draw.
#[derive(Debug, Clone, Copy)]
pub struct ChartSeries<'a> {
    /// Shown in the legend.
    pub name: &'a str,
    /// The controller's timeline; every series of a chart covers the same ticks.
    pub rows: &'a [TimelineRow],
}

/// How to draw a chart.
#[derive(Debug, Clone, PartialEq)]
pub struct ChartOptions {
    /// Shown above the legend.
    pub title: String,
    /// Load units per second that one ready replica serves; the ready capacity line of a
    /// series is `ready × capacity`. Must be positive and finite.
    pub capacity: f64,
    /// Width of the chart, in pixels (at least 320).
    pub width: u32,
    /// Height of the chart, in pixels (at least 240).
    pub height: u32,
    /// Each line is downsampled to at most this many points (values below 2 count as 2).
    pub max_points: usize,
}

impl ChartOptions {
    /// Options with the given title and replica capacity, a 1200 × 800 chart and
    /// [`DEFAULT_MAX_POINTS`] points per line.
    pub fn new(title: impl Into<String>, capacity: f64) -> Self {
        Self {
            title: title.into(),
            capacity,
            ..Self::default()
        }
    }
}

impl Default for ChartOptions {
    fn default() -> Self {
        Self {
            title: "Backtest".to_owned(),
            capacity: 1.0,
            width: 1200,
            height: 800,
            max_points: DEFAULT_MAX_POINTS,
        }
    }
}

/// The file format of a chart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChartFormat {
    /// Scalable vector graphics (`.svg`).
    Svg,
    /// A PNG image (`.png`).
    Png,
}

impl ChartFormat {
    /// The format named by the extension of `path` (`.svg` or `.png`, in any case).
    pub fn from_path(path: &Path) -> Result<Self, ChartError> {
        let extension = path.extension().map(|e| e.to_string_lossy().into_owned());
        match extension.as_deref().map(str::to_ascii_lowercase).as_deref() {
            Some("svg") => Ok(Self::Svg),
            Some("png") => Ok(Self::Png),
            _ => Err(ChartError::UnsupportedFormat {
                path: path.to_path_buf(),
                extension,
            }),
        }
    }

    /// The usual file extension of the format, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Svg => "svg",
            Self::Png => "png",
        }
    }
}

/// Why a chart could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    /// No series were given.
    #[error("nothing to chart: no series were given")]
    NoSeries,
    /// A series has no rows.
    #[error("series `{name}` has no rows to chart")]
    EmptySeries {
        /// The series' name.
        name: String,
    },
    /// The series do not all have as many rows as the first.
    #[error(
        "series `{name}` has {found} rows but `{first}` has {expected}; \
         the series of one chart must cover the same ticks"
    )]
    LengthMismatch {
        /// The first series' name.
        first: String,
        /// The first series' row count.
        expected: usize,
        /// The offending series' name.
        name: String,
        /// The offending series' row count.
        found: usize,
    },
    /// The replica capacity is not a positive finite number.
    #[error("replica capacity must be a positive finite number of load units per second, got {0}")]
    InvalidCapacity(f64),
    /// The requested size is too small to lay the chart out.
    #[error("a chart of {width}×{height} pixels is too small (at least {min_width}×{min_height})")]
    TooSmall {
        /// Requested width.
        width: u32,
        /// Requested height.
        height: u32,
        /// Smallest width accepted.
        min_width: u32,
        /// Smallest height accepted.
        min_height: u32,
    },
    /// The path's extension names no chart format.
    #[error(
        "cannot tell the chart format of `{}`: {}; use .svg or .png",
        path.display(),
        match extension {
            Some(e) => format!("unsupported extension `.{e}`"),
            None => "it has no extension".to_owned(),
        }
    )]
    UnsupportedFormat {
        /// The path given.
        path: PathBuf,
        /// Its extension, if it has one.
        extension: Option<String>,
    },
    /// Drawing the SVG failed.
    #[error("drawing the chart failed: {0}")]
    Draw(String),
    /// Turning the SVG into a PNG failed.
    #[error("rendering the chart to PNG failed: {0}")]
    Raster(String),
    /// Writing the chart file failed.
    #[error("cannot write chart `{}`: {source}", path.display())]
    Io {
        /// The file being written.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

/// Splits `len` consecutive items into at most `max_points` contiguous buckets of nearly equal
/// size (sizes differ by at most one), in order. Every item belongs to exactly one bucket;
/// there are no empty buckets. `max_points` below 1 counts as 1.
pub fn buckets(len: usize, max_points: usize) -> impl Iterator<Item = Range<usize>> {
    let count = max_points.max(1).min(len);
    // u128 so that `b * len` cannot overflow.
    let bound = move |b: usize| (b as u128 * len as u128 / count as u128) as usize;
    (0..count).map(move |b| bound(b)..bound(b + 1))
}

/// Downsamples a line of `(x, y)` points, sorted by `x`, to at most `max_points` points.
///
/// The points are split into contiguous [`buckets`], and each bucket is represented by its
/// point of largest `y` (the first such point on a tie; NaN never wins over a number), so a
/// peak, even a single point wide, is kept with its own `x`. A line already short enough
/// comes back unchanged.
pub fn downsample_max(points: &[(f64, f64)], max_points: usize) -> Vec<(f64, f64)> {
    downsample_max_by(points.len(), max_points, |i| points[i].0, |i| points[i].1)
}

/// [`downsample_max`] over `len` points given by the `x` and `y` accessors.
fn downsample_max_by(
    len: usize,
    max_points: usize,
    x: impl Fn(usize) -> f64,
    y: impl Fn(usize) -> f64,
) -> Vec<(f64, f64)> {
    buckets(len, max_points)
        .map(|bucket| {
            let mut best = bucket.start;
            for i in bucket {
                let (candidate, current) = (y(i), y(best));
                if candidate > current || (current.is_nan() && !candidate.is_nan()) {
                    best = i;
                }
            }
            (x(best), y(best))
        })
        .collect()
}

/// Renders the chart of `series` as an SVG document.
pub fn render_svg(series: &[ChartSeries], opts: &ChartOptions) -> Result<String, ChartError> {
    let data = ChartData::prepare(series, opts)?;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (opts.width, opts.height)).into_drawing_area();
        draw(&root, &data, series, opts).map_err(|e| ChartError::Draw(e.to_string()))?;
        root.present()
            .map_err(|e| ChartError::Draw(e.to_string()))?;
    }
    Ok(dash_reference_lines(svg))
}

/// Gives the lines drawn in [`REQUIRED_MARKER`] their real colour and dashes.
fn dash_reference_lines(svg: String) -> String {
    let RGBColor(r, g, b) = REQUIRED_MARKER;
    svg.replace(
        &format!("stroke=\"#{r:02X}{g:02X}{b:02X}\""),
        REQUIRED_STROKE,
    )
}

/// Renders the chart of `series` as a PNG image of `opts.width × opts.height` pixels.
///
/// The SVG of [`render_svg`] is rasterised with `resvg`, with the system fonts loaded once
/// per process; without any font installed the image is still made, only without text.
pub fn render_png(series: &[ChartSeries], opts: &ChartOptions) -> Result<Vec<u8>, ChartError> {
    let svg = render_svg(series, opts)?;
    svg_to_png(&svg, system_fonts())
}

/// Renders the chart of `series` and writes it to `path`, as SVG or PNG after the path's
/// extension (see [`ChartFormat::from_path`]).
pub fn write_chart(
    path: &Path,
    series: &[ChartSeries],
    opts: &ChartOptions,
) -> Result<(), ChartError> {
    let bytes = match ChartFormat::from_path(path)? {
        ChartFormat::Svg => render_svg(series, opts)?.into_bytes(),
        ChartFormat::Png => render_png(series, opts)?,
    };
    std::fs::write(path, bytes).map_err(|source| ChartError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// The unit of the time axis.
#[derive(Debug, Clone, Copy)]
struct TimeUnit {
    seconds: f64,
    description: &'static str,
}

/// Everything to draw, downsampled and in chart coordinates.
#[derive(Debug)]
struct ChartData {
    unit: TimeUnit,
    /// Right end of the time axis, in `unit`s since the trace start.
    x_end: f64,
    demand: Vec<(f64, f64)>,
    /// Ready capacity of each series, in load units per second.
    capacity: Vec<Vec<(f64, f64)>>,
    /// Ready replicas of each series.
    ready: Vec<Vec<(f64, u32)>>,
    /// Required replicas of the first series.
    required: Vec<(f64, u32)>,
    /// Top of the load axis.
    load_top: f64,
    /// Top of the replica axis.
    replicas_top: u32,
}

impl ChartData {
    /// Checks the input and downsamples every line.
    fn prepare(series: &[ChartSeries], opts: &ChartOptions) -> Result<Self, ChartError> {
        let first = series.first().ok_or(ChartError::NoSeries)?;
        for s in series {
            if s.rows.is_empty() {
                return Err(ChartError::EmptySeries {
                    name: s.name.to_owned(),
                });
            }
            if s.rows.len() != first.rows.len() {
                return Err(ChartError::LengthMismatch {
                    first: first.name.to_owned(),
                    expected: first.rows.len(),
                    name: s.name.to_owned(),
                    found: s.rows.len(),
                });
            }
        }
        if !(opts.capacity.is_finite() && opts.capacity > 0.0) {
            return Err(ChartError::InvalidCapacity(opts.capacity));
        }
        if opts.width < MIN_WIDTH || opts.height < MIN_HEIGHT {
            return Err(ChartError::TooSmall {
                width: opts.width,
                height: opts.height,
                min_width: MIN_WIDTH,
                min_height: MIN_HEIGHT,
            });
        }

        let rows = first.rows;
        let start = rows[0].timestamp_s;
        let span = rows[rows.len() - 1].timestamp_s - start;
        let unit = if span > DAYS_AXIS_AFTER * DAY_S {
            TimeUnit {
                seconds: DAY_S,
                description: "days since trace start",
            }
        } else {
            TimeUnit {
                seconds: HOUR_S,
                description: "hours since trace start",
            }
        };
        let x_end = if span > 0.0 { span / unit.seconds } else { 1.0 };
        let max_points = opts.max_points.max(2);
        let x_of = |rows: &[TimelineRow], i: usize| (rows[i].timestamp_s - start) / unit.seconds;
        let line = |rows: &[TimelineRow], value: &dyn Fn(&TimelineRow) -> f64| {
            downsample_max_by(
                rows.len(),
                max_points,
                |i| x_of(rows, i),
                |i| value(&rows[i]),
            )
        };
        let as_counts = |line: Vec<(f64, f64)>| -> Vec<(f64, u32)> {
            line.into_iter().map(|(x, y)| (x, y as u32)).collect()
        };

        let demand = line(rows, &|r| r.demand);
        let capacity: Vec<_> = series
            .iter()
            .map(|s| line(s.rows, &|r| f64::from(r.ready) * opts.capacity))
            .collect();
        let ready: Vec<_> = series
            .iter()
            .map(|s| as_counts(line(s.rows, &|r| f64::from(r.ready))))
            .collect();
        let required = as_counts(line(rows, &|r| f64::from(r.required)));

        let load_max = demand
            .iter()
            .chain(capacity.iter().flatten())
            .map(|&(_, y)| y)
            .filter(|y| y.is_finite())
            .fold(0.0, f64::max);
        let load_top = if load_max > 0.0 { load_max * 1.08 } else { 1.0 };
        let replicas_max = ready
            .iter()
            .flatten()
            .chain(&required)
            .map(|&(_, n)| n)
            .max()
            .unwrap_or(0);
        let replicas_top = replicas_max + replicas_max / 12 + 1;

        Ok(Self {
            unit,
            x_end,
            demand,
            capacity,
            ready,
            required,
            load_top,
            replicas_top,
        })
    }
}

/// A text style of `px` SVG pixels (plotters writes `font-size` as the size it is given
/// divided by 1.24).
fn font(px: f64) -> TextStyle<'static> {
    ("sans-serif", px * 1.24).into_font().color(&BLACK)
}

/// A bold [`font`].
fn bold_font(px: f64) -> TextStyle<'static> {
    ("sans-serif", px * 1.24, FontStyle::Bold)
        .into_font()
        .color(&BLACK)
}

/// The colour of the `i`-th series.
fn series_color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// `value` with at most two decimals and no trailing zeros.
fn trim_number(value: f64) -> String {
    let text = format!("{value:.2}");
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        &text
    };
    if text == "-0" {
        "0".to_owned()
    } else {
        text.to_owned()
    }
}

/// A short axis label: `1500` becomes `1.5k`, `2_000_000` becomes `2M`.
fn short_number(value: f64) -> String {
    let magnitude = value.abs();
    let (scaled, suffix) = if magnitude >= 1e9 {
        (value / 1e9, "G")
    } else if magnitude >= 1e6 {
        (value / 1e6, "M")
    } else if magnitude >= 1e3 {
        (value / 1e3, "k")
    } else {
        (value, "")
    };
    format!("{}{suffix}", trim_number(scaled))
}

/// What a legend entry's swatch looks like.
#[derive(Debug, Clone, Copy)]
enum Swatch {
    Area,
    Line(RGBColor),
    Dashed,
}

/// Height of one legend row, in pixels.
const LEGEND_ROW_H: i32 = 22;
/// Width of a legend swatch, in pixels.
const SWATCH_W: i32 = 26;

/// Lays the legend entries out in rows no wider than `width`: the position of each entry
/// relative to the legend's top left corner, and the number of rows.
fn legend_layout(entries: &[(String, Swatch)], width: i32) -> (Vec<(i32, i32)>, i32) {
    let (mut x, mut row) = (0, 0);
    let mut positions = Vec::with_capacity(entries.len());
    for (label, _) in entries {
        let text_w = (label.chars().count() as f64 * LEGEND_PX * CHAR_WIDTH_EM).ceil() as i32;
        let entry_w = SWATCH_W + 8 + text_w;
        if x > 0 && x + entry_w > width {
            x = 0;
            row += 1;
        }
        positions.push((x, row * LEGEND_ROW_H));
        x += entry_w + 24;
    }
    (positions, row + 1)
}

/// Draws the title, the legend and both panels onto `root`.
fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    data: &ChartData,
    series: &[ChartSeries],
    opts: &ChartOptions,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&WHITE)?;
    let width = opts.width as i32;

    // Legend entries: the demand, one per series (its capacity line on top, its ready line
    // below share the colour), and the required reference.
    let mut entries = vec![("demand".to_owned(), Swatch::Area)];
    entries.extend(
        series
            .iter()
            .enumerate()
            .map(|(i, s)| (s.name.to_owned(), Swatch::Line(series_color(i)))),
    );
    entries.push(("required replicas".to_owned(), Swatch::Dashed));
    let legend_left = MARGIN_LEFT as i32 + Y_LABEL_AREA as i32;
    let (positions, legend_rows) =
        legend_layout(&entries, width - legend_left - MARGIN_RIGHT as i32);

    let title_h = (TITLE_PX * 2.0) as i32;
    let header_h = title_h + legend_rows * LEGEND_ROW_H + 6;
    let (header, body) = root.split_vertically(header_h);

    header.draw(&Text::new(
        opts.title.clone(),
        (width / 2, title_h / 2),
        bold_font(TITLE_PX).pos(Pos::new(HPos::Center, VPos::Center)),
    ))?;
    let text_style = font(LEGEND_PX).pos(Pos::new(HPos::Left, VPos::Center));
    for ((label, swatch), (x, y)) in entries.iter().zip(&positions) {
        let (x, y) = (legend_left + x, title_h + y + LEGEND_ROW_H / 2);
        match *swatch {
            Swatch::Area => {
                header.draw(&Rectangle::new(
                    [(x, y - 6), (x + SWATCH_W, y + 6)],
                    DEMAND_FILL.filled(),
                ))?;
                header.draw(&PathElement::new(
                    [(x, y - 6), (x + SWATCH_W, y - 6)],
                    DEMAND_LINE.stroke_width(1),
                ))?;
            }
            Swatch::Line(color) => {
                header.draw(&PathElement::new(
                    [(x, y), (x + SWATCH_W, y)],
                    color.stroke_width(3),
                ))?;
            }
            Swatch::Dashed => {
                header.draw(&PathElement::new(
                    [(x, y), (x + SWATCH_W, y)],
                    REQUIRED_MARKER.stroke_width(REQUIRED_WIDTH),
                ))?;
            }
        }
        header.draw(&Text::new(
            label.clone(),
            (x + SWATCH_W + 8, y),
            text_style.clone(),
        ))?;
    }

    let body_h = opts.height as i32 - header_h;
    // The bottom panel also holds the time labels: split what is left after them so the
    // top panel gets a little more than half.
    let (top, bottom) = body.split_vertically((body_h - X_LABEL_AREA as i32) * 55 / 100);
    let x_labels = (opts.width as usize / 110).max(3);
    let x_format = |v: &f64| trim_number(*v);

    let caption = format!(
        "Demand and ready capacity (ready × {} load/s)",
        short_number(opts.capacity)
    );
    let mut load =
        panel(&top, caption, 8, 0).build_cartesian_2d(0.0..data.x_end, 0.0..data.load_top)?;
    style_mesh(&mut load.configure_mesh(), x_labels)
        .y_desc("load / s")
        .y_label_formatter(&|v| short_number(*v))
        .draw()?;
    load.draw_series(
        AreaSeries::new(
            data.demand.iter().copied(),
            0.0,
            DEMAND_FILL.mix(0.7).filled(),
        )
        .border_style(DEMAND_LINE.stroke_width(1)),
    )?;
    for (i, line) in data.capacity.iter().enumerate() {
        load.draw_series(LineSeries::new(
            line.iter().copied(),
            series_color(i).stroke_width(2),
        ))?;
    }

    let mut replicas = panel(&bottom, "Ready replicas", 10, X_LABEL_AREA)
        .build_cartesian_2d(0.0..data.x_end, 0..data.replicas_top)?;
    style_mesh(&mut replicas.configure_mesh(), x_labels)
        .x_desc(data.unit.description)
        .y_desc("replicas")
        .x_label_formatter(&x_format)
        .draw()?;
    for (i, line) in data.ready.iter().enumerate() {
        replicas.draw_series(LineSeries::new(
            line.iter().copied(),
            series_color(i).stroke_width(2),
        ))?;
    }
    replicas.draw_series(LineSeries::new(
        data.required.iter().copied(),
        REQUIRED_MARKER.stroke_width(REQUIRED_WIDTH),
    ))?;
    Ok(())
}

/// A panel's chart builder on `area`: the margins and label areas both panels share, with
/// `caption` on top, `margin_bottom` below and an `x_label_area` high strip for time labels.
fn panel<'a, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, Shift>,
    caption: impl AsRef<str>,
    margin_bottom: u32,
    x_label_area: u32,
) -> ChartBuilder<'a, 'static, DB> {
    let mut builder = ChartBuilder::on(area);
    builder
        .margin_left(MARGIN_LEFT)
        .margin_right(MARGIN_RIGHT)
        .margin_top(4)
        .margin_bottom(margin_bottom)
        .caption(caption, font(CAPTION_PX))
        .x_label_area_size(x_label_area)
        .y_label_area_size(Y_LABEL_AREA);
    builder
}

/// The mesh style both panels share: `x_labels` time labels, six value labels, the chart's
/// fonts and a light grid.
fn style_mesh<'m, 'a, 'b, X, Y, XT, YT, DB>(
    mesh: &'m mut MeshStyle<'a, 'b, X, Y, DB>,
    x_labels: usize,
) -> &'m mut MeshStyle<'a, 'b, X, Y, DB>
where
    X: Ranged<ValueType = XT> + ValueFormatter<XT>,
    Y: Ranged<ValueType = YT> + ValueFormatter<YT>,
    DB: DrawingBackend,
{
    mesh.x_labels(x_labels)
        .y_labels(6)
        .label_style(font(LABEL_PX))
        .axis_desc_style(font(AXIS_DESC_PX))
        .bold_line_style(GRID_BOLD)
        .light_line_style(GRID_LIGHT)
        .max_light_lines(1)
}

/// The system fonts, loaded once per process, with `sans-serif` mapped to an installed
/// family (the generic family the chart's text asks for).
fn system_fonts() -> Arc<fontdb::Database> {
    static FONTS: OnceLock<Arc<fontdb::Database>> = OnceLock::new();
    FONTS
        .get_or_init(|| {
            let mut db = fontdb::Database::new();
            db.load_system_fonts();
            let installed = |family: &str| {
                db.faces()
                    .any(|face| face.families.iter().any(|(name, _)| name == family))
            };
            let sans = SANS_SERIF_FAMILIES
                .iter()
                .find(|family| installed(family))
                .map(|family| (*family).to_owned())
                .or_else(|| {
                    db.faces()
                        .find_map(|face| face.families.first().map(|(name, _)| name.clone()))
                });
            if let Some(family) = sans {
                db.set_sans_serif_family(family);
            }
            Arc::new(db)
        })
        .clone()
}

/// Rasterises `svg` to a PNG with the fonts of `fonts`, at the SVG's own size.
fn svg_to_png(svg: &str, fonts: Arc<fontdb::Database>) -> Result<Vec<u8>, ChartError> {
    let options = usvg::Options {
        fontdb: fonts,
        ..usvg::Options::default()
    };
    let tree = usvg::Tree::from_str(svg, &options)
        .map_err(|e| ChartError::Raster(format!("cannot parse the SVG: {e}")))?;
    let size = tree.size().to_int_size();
    let mut pixmap = tiny_skia::Pixmap::new(size.width(), size.height()).ok_or_else(|| {
        ChartError::Raster(format!(
            "cannot allocate a {}×{} image",
            size.width(),
            size.height()
        ))
    })?;
    pixmap.fill(tiny_skia::Color::WHITE);
    resvg::render(&tree, tiny_skia::Transform::default(), &mut pixmap.as_mut());
    pixmap
        .encode_png()
        .map_err(|e| ChartError::Raster(format!("cannot encode the PNG: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(n: usize) -> Vec<TimelineRow> {
        (0..n)
            .map(|i| TimelineRow {
                timestamp_s: i as f64 * 60.0,
                demand: 10.0 + (i % 7) as f64,
                required: 2,
                desired: 3,
                ready: 3,
                allocated: 3,
            })
            .collect()
    }

    #[test]
    fn png_is_made_even_without_any_font() {
        let rows = rows(100);
        let series = [ChartSeries {
            name: "hpa",
            rows: &rows,
        }];
        let svg = render_svg(&series, &ChartOptions::default()).unwrap();
        let png = svg_to_png(&svg, Arc::new(fontdb::Database::new())).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    }

    #[test]
    fn axis_numbers_are_short() {
        assert_eq!(short_number(0.0), "0");
        assert_eq!(short_number(12.5), "12.5");
        assert_eq!(short_number(1500.0), "1.5k");
        assert_eq!(short_number(2_000_000.0), "2M");
        assert_eq!(trim_number(3.0), "3");
        assert_eq!(trim_number(-0.001), "0");
    }

    #[test]
    fn legend_wraps_when_entries_do_not_fit() {
        let entries: Vec<_> = (0..6)
            .map(|i| (format!("controller-{i}"), Swatch::Line(series_color(i))))
            .collect();
        let (positions, rows) = legend_layout(&entries, 400);
        assert!(rows > 1);
        assert_eq!(positions[0], (0, 0));
        assert!(positions.iter().all(|&(x, _)| x < 400));
    }
}
