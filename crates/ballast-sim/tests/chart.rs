//! Charts of backtest timelines: SVG and PNG output, downsampling and file formats.

use std::path::Path;

use ballast_sim::TimelineRow;
use ballast_sim::chart::{
    ChartError, ChartFormat, ChartOptions, ChartSeries, buckets, downsample_max, render_png,
    render_svg, write_chart,
};

const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

/// A synthetic day-shaped demand over `n` one-minute ticks, served by a controller that
/// follows the required count `lag` ticks late with `headroom` extra replicas.
fn timeline(n: usize, lag: usize, headroom: u32) -> Vec<TimelineRow> {
    let capacity = 10.0;
    let demand = |i: usize| {
        let day = (i as f64 / 1440.0) * std::f64::consts::TAU;
        let wobble = ((i * 7919) % 101) as f64 / 10.0;
        200.0 + 150.0 * day.sin() + wobble
    };
    let required = |i: usize| (demand(i) / capacity).ceil() as u32;
    (0..n)
        .map(|i| {
            let ready = required(i.saturating_sub(lag)) + headroom;
            TimelineRow {
                timestamp_s: i as f64 * 60.0,
                demand: demand(i),
                required: required(i),
                desired: ready,
                ready,
                allocated: ready,
            }
        })
        .collect()
}

fn options() -> ChartOptions {
    ChartOptions::new("Synthetic backtest", 10.0)
}

/// Width and height from the IHDR chunk, which directly follows the signature.
fn png_size(png: &[u8]) -> (u32, u32) {
    assert_eq!(&png[..8], PNG_SIGNATURE);
    assert_eq!(&png[12..16], b"IHDR");
    let be = |b: &[u8]| u32::from_be_bytes(b.try_into().unwrap());
    (be(&png[16..20]), be(&png[20..24]))
}

/// The contents of the `<text>` elements of an SVG, trimmed.
fn texts(svg: &str) -> Vec<&str> {
    svg.split("<text")
        .skip(1)
        .filter_map(|element| {
            let start = element.find('>')? + 1;
            let end = element.find("</text>")?;
            Some(element[start..end].trim())
        })
        .collect()
}

#[test]
fn svg_starts_with_an_svg_element_and_names_every_series_in_the_legend() {
    let oracle = timeline(3000, 0, 0);
    let hpa = timeline(3000, 5, 1);
    let series = [
        ChartSeries {
            name: "oracle-reference",
            rows: &oracle,
        },
        ChartSeries {
            name: "hpa-cpu-70",
            rows: &hpa,
        },
    ];
    let svg = render_svg(&series, &options()).unwrap();
    assert!(svg.starts_with("<svg"), "{}", &svg[..80]);
    assert!(svg.trim_end().ends_with("</svg>"));
    let texts = texts(&svg);
    for name in [
        "oracle-reference",
        "hpa-cpu-70",
        "demand",
        "required replicas",
    ] {
        assert!(texts.contains(&name), "no legend entry {name} in {texts:?}");
    }
    assert!(svg.contains("Synthetic backtest"));
    assert!(svg.contains("hours since trace start"));
}

#[test]
fn svg_of_a_125k_tick_timeline_stays_under_a_megabyte_and_counts_days() {
    let oracle = timeline(125_000, 0, 0);
    let hpa = timeline(125_000, 5, 1);
    let late = timeline(125_000, 30, 0);
    let series = [
        ChartSeries {
            name: "oracle",
            rows: &oracle,
        },
        ChartSeries {
            name: "hpa",
            rows: &hpa,
        },
        ChartSeries {
            name: "late",
            rows: &late,
        },
    ];
    let svg = render_svg(&series, &options()).unwrap();
    assert!(svg.len() < 1_000_000, "SVG is {} bytes", svg.len());
    assert!(svg.contains("days since trace start"));
}

#[test]
fn series_names_are_escaped_in_the_svg() {
    let rows = timeline(100, 0, 0);
    let series = [ChartSeries {
        name: "a<b & c",
        rows: &rows,
    }];
    let svg = render_svg(&series, &options()).unwrap();
    assert!(svg.contains("a&lt;b &amp; c"));
    assert!(!svg.contains("a<b"));
}

#[test]
fn downsampling_keeps_a_single_row_spike() {
    let mut points: Vec<(f64, f64)> = (0..125_000).map(|i| (i as f64, 1.0)).collect();
    points[77_777].1 = 500.0;
    let sampled = downsample_max(&points, 2000);
    assert!(sampled.len() <= 2000);
    assert!(sampled.contains(&(77_777.0, 500.0)), "spike lost");
    assert_eq!(sampled.iter().filter(|p| p.1 == 500.0).count(), 1);
}

#[test]
fn downsampling_keeps_spikes_at_both_ends_and_orders_points_by_time() {
    let mut points: Vec<(f64, f64)> = (0..10_001).map(|i| (i as f64, 0.0)).collect();
    points[0].1 = 3.0;
    points[10_000].1 = 4.0;
    let sampled = downsample_max(&points, 7);
    assert_eq!(sampled.len(), 7);
    assert_eq!(sampled.first(), Some(&(0.0, 3.0)));
    assert_eq!(sampled.last(), Some(&(10_000.0, 4.0)));
    assert!(sampled.windows(2).all(|w| w[0].0 < w[1].0));
}

#[test]
fn a_short_line_is_not_downsampled() {
    let points = [(0.0, 1.0), (1.0, f64::NAN), (2.0, 2.0)];
    let sampled = downsample_max(&points, 2000);
    assert_eq!(sampled.len(), 3);
    assert_eq!(sampled[0], (0.0, 1.0));
    assert!(sampled[1].1.is_nan());
}

#[test]
fn buckets_cover_every_row_once_in_order() {
    for (len, max) in [
        (0, 10),
        (5, 10),
        (10, 10),
        (11, 10),
        (125_000, 2000),
        (7, 0),
    ] {
        let all: Vec<_> = buckets(len, max).collect();
        assert!(all.len() <= max.max(1));
        assert!(all.iter().all(|b| !b.is_empty()));
        assert_eq!(
            all.iter().flat_map(|b| b.clone()).collect::<Vec<_>>(),
            (0..len).collect::<Vec<_>>()
        );
        if let (Some(min), Some(max)) = (
            all.iter().map(|b| b.len()).min(),
            all.iter().map(|b| b.len()).max(),
        ) {
            assert!(max - min <= 1);
        }
    }
}

#[test]
fn png_starts_with_the_signature_and_has_the_requested_size() {
    let rows = timeline(2000, 3, 1);
    let series = [ChartSeries {
        name: "hpa",
        rows: &rows,
    }];
    let opts = ChartOptions {
        width: 900,
        height: 560,
        ..options()
    };
    let png = render_png(&series, &opts).unwrap();
    assert_eq!(png_size(&png), (900, 560));
}

#[test]
fn write_chart_picks_the_format_from_the_extension() {
    let dir = std::env::temp_dir().join(format!("ballast-chart-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let rows = timeline(500, 2, 0);
    let series = [ChartSeries {
        name: "hpa",
        rows: &rows,
    }];

    let svg_path = dir.join("chart.svg");
    write_chart(&svg_path, &series, &options()).unwrap();
    assert!(
        std::fs::read_to_string(&svg_path)
            .unwrap()
            .starts_with("<svg")
    );

    let png_path = dir.join("chart.PNG");
    write_chart(&png_path, &series, &options()).unwrap();
    assert_eq!(png_size(&std::fs::read(&png_path).unwrap()), (1200, 800));

    let err = write_chart(&dir.join("missing/chart.svg"), &series, &options()).unwrap_err();
    assert!(matches!(err, ChartError::Io { .. }), "{err}");
    assert!(err.to_string().contains("missing"), "{err}");

    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn format_comes_from_the_extension_in_any_case() {
    assert_eq!(
        ChartFormat::from_path(Path::new("out/a.svg")).unwrap(),
        ChartFormat::Svg
    );
    assert_eq!(
        ChartFormat::from_path(Path::new("a.SVG")).unwrap(),
        ChartFormat::Svg
    );
    assert_eq!(
        ChartFormat::from_path(Path::new("a.b.png")).unwrap(),
        ChartFormat::Png
    );
}

#[test]
fn an_unknown_extension_is_named_in_the_error() {
    let err = ChartFormat::from_path(Path::new("chart.jpg")).unwrap_err();
    assert!(err.to_string().contains(".jpg"), "{err}");
    let err = ChartFormat::from_path(Path::new("chart")).unwrap_err();
    assert!(err.to_string().contains("no extension"), "{err}");
}

#[test]
fn no_series_or_an_empty_one_is_an_error() {
    assert!(matches!(
        render_svg(&[], &options()),
        Err(ChartError::NoSeries)
    ));
    let series = [ChartSeries {
        name: "empty",
        rows: &[],
    }];
    let err = render_svg(&series, &options()).unwrap_err();
    assert!(matches!(err, ChartError::EmptySeries { .. }));
    assert!(err.to_string().contains("empty"));
}

#[test]
fn series_of_different_lengths_are_an_error() {
    let long = timeline(100, 0, 0);
    let short = timeline(99, 0, 0);
    let series = [
        ChartSeries {
            name: "long",
            rows: &long,
        },
        ChartSeries {
            name: "short",
            rows: &short,
        },
    ];
    let err = render_svg(&series, &options()).unwrap_err();
    assert!(
        matches!(
            err,
            ChartError::LengthMismatch {
                expected: 100,
                found: 99,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn a_bad_capacity_or_a_tiny_size_is_an_error() {
    let rows = timeline(10, 0, 0);
    let series = [ChartSeries {
        name: "hpa",
        rows: &rows,
    }];
    let zero_capacity = ChartOptions::new("t", 0.0);
    assert!(matches!(
        render_svg(&series, &zero_capacity),
        Err(ChartError::InvalidCapacity(_))
    ));
    let tiny = ChartOptions {
        width: 10,
        height: 10,
        ..options()
    };
    assert!(matches!(
        render_png(&series, &tiny),
        Err(ChartError::TooSmall { .. })
    ));
}

#[test]
fn a_single_row_still_makes_a_chart() {
    let rows = timeline(1, 0, 0);
    let series = [ChartSeries {
        name: "hpa",
        rows: &rows,
    }];
    assert!(render_svg(&series, &options()).unwrap().starts_with("<svg"));
}
