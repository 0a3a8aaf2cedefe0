//! PNG charts of the sustained run (plotters, bitmap backend, text drawn with a TrueType font
//! loaded at run time: `--font`, DejaVu Sans by default).

use std::path::Path;

use anyhow::{Context, anyhow};
use plotters::prelude::*;
use plotters::style::FontStyle;

use crate::sustained::Sample;

const SIZE: (u32, u32) = (1100, 520);

/// A line of a chart: its label, the value it plots, its colour.
type Series = (&'static str, fn(&Sample) -> f64, RGBColor);
const FONT: &str = "sans-serif";

fn register_font(path: &Path) -> anyhow::Result<()> {
    let bytes = std::fs::read(path).with_context(|| {
        format!(
            "reading the charts' font {} (pass --font with a .ttf file)",
            path.display()
        )
    })?;
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    plotters::style::register_font(FONT, FontStyle::Normal, bytes)
        .map_err(|_| anyhow!("{} is not a usable TrueType font", path.display()))
}

fn err(e: impl std::fmt::Debug) -> anyhow::Error {
    anyhow!("drawing a chart: {e:?}")
}

/// Millions of events written: the x axis of every chart.
fn x(s: &Sample) -> f64 {
    s.events as f64 / 1e6
}

fn x_max(samples: &[Sample]) -> f64 {
    samples.last().map_or(1.0, x).max(0.001)
}

/// A series' mark in the legend: a short line in its colour.
fn legend_line(color: RGBColor) -> impl Fn((i32, i32)) -> PathElement<(i32, i32)> {
    move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
}

/// A centred moving average of `values` over `window` points.
fn moving_average(values: &[f64], window: usize) -> Vec<f64> {
    let half = window / 2;
    (0..values.len())
        .map(|i| {
            let lo = i.saturating_sub(half);
            let hi = (i + half + 1).min(values.len());
            values[lo..hi].iter().sum::<f64>() / (hi - lo) as f64
        })
        .collect()
}

fn throughput(samples: &[Sample], path: &Path, title: &str) -> anyhow::Result<()> {
    let root = BitMapBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let rates: Vec<f64> = samples.iter().map(|s| s.events_per_s).collect();
    let smooth = moving_average(&rates, 15);
    let y_max = rates.iter().copied().fold(1.0, f64::max) * 1.1;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, (FONT, 22))
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(80)
        .build_cartesian_2d(0.0..x_max(samples), 0.0..y_max)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("events in the store (millions)")
        .y_desc("events/s")
        .label_style((FONT, 14))
        .draw()
        .map_err(err)?;
    chart
        .draw_series(LineSeries::new(
            samples.iter().zip(&rates).map(|(s, &r)| (x(s), r)),
            RGBColor(150, 180, 230).stroke_width(1),
        ))
        .map_err(err)?
        .label("per second")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RGBColor(150, 180, 230)));
    chart
        .draw_series(LineSeries::new(
            samples.iter().zip(&smooth).map(|(s, &r)| (x(s), r)),
            BLUE.stroke_width(2),
        ))
        .map_err(err)?
        .label("15 s moving average")
        .legend(legend_line(BLUE));
    chart
        .configure_series_labels()
        .label_font((FONT, 14))
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    root.present().map_err(err)?;
    Ok(())
}

fn latency(samples: &[Sample], path: &Path, title: &str) -> anyhow::Result<()> {
    let root = BitMapBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let y_max = samples.iter().map(|s| s.max_us).fold(10.0, f64::max) * 1.5;
    let y_min = samples
        .iter()
        .map(|s| s.p50_us)
        .filter(|v| *v > 0.0)
        .fold(f64::INFINITY, f64::min)
        .min(y_max / 10.0)
        .max(1.0)
        / 1.5;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, (FONT, 22))
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(80)
        .build_cartesian_2d(0.0..x_max(samples), (y_min..y_max).log_scale())
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("events in the store (millions)")
        .y_desc("append latency (µs, log scale)")
        .label_style((FONT, 14))
        .draw()
        .map_err(err)?;
    let series: [Series; 4] = [
        ("p50", |s| s.p50_us, RGBColor(30, 120, 30)),
        ("p99", |s| s.p99_us, RGBColor(30, 60, 200)),
        ("p99.9", |s| s.p999_us, RGBColor(230, 120, 0)),
        ("max", |s| s.max_us, RGBColor(200, 30, 30)),
    ];
    for (label, value, color) in series {
        chart
            .draw_series(LineSeries::new(
                samples
                    .iter()
                    .filter(|s| s.appends > 0)
                    .map(|s| (x(s), value(s).max(y_min))),
                color.stroke_width(1),
            ))
            .map_err(err)?
            .label(label)
            .legend(legend_line(color));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .label_font((FONT, 14))
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    root.present().map_err(err)?;
    Ok(())
}

fn resources(samples: &[Sample], path: &Path, title: &str) -> anyhow::Result<()> {
    let root = BitMapBackend::new(path, (SIZE.0, SIZE.1 + 200)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let root = root.titled(title, (FONT, 22)).map_err(err)?;
    let (top, bottom) = root.split_vertically(((SIZE.1 + 160) / 2) as i32);
    let rss_max = samples.iter().map(|s| s.rss_mb).fold(1.0, f64::max) * 1.1;
    let mut chart = ChartBuilder::on(&top)
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d(0.0..x_max(samples), 0.0..rss_max)
        .map_err(err)?;
    chart
        .configure_mesh()
        .y_desc("RSS (MiB)")
        .label_style((FONT, 14))
        .draw()
        .map_err(err)?;
    chart
        .draw_series(LineSeries::new(
            samples.iter().map(|s| (x(s), s.rss_mb)),
            RGBColor(120, 40, 160).stroke_width(2),
        ))
        .map_err(err)?;
    let disk_max = samples
        .iter()
        .map(|s| s.disk_bytes as f64 / 1e9)
        .fold(0.01, f64::max)
        * 1.1;
    let mut chart = ChartBuilder::on(&bottom)
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(80)
        .build_cartesian_2d(0.0..x_max(samples), 0.0..disk_max)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("events in the store (millions)")
        .y_desc("disk (GB allocated)")
        .label_style((FONT, 14))
        .draw()
        .map_err(err)?;
    chart
        .draw_series(LineSeries::new(
            samples.iter().map(|s| (x(s), s.disk_bytes as f64 / 1e9)),
            RGBColor(160, 90, 20).stroke_width(2),
        ))
        .map_err(err)?;
    root.present().map_err(err)?;
    Ok(())
}

fn cpu(samples: &[Sample], path: &Path, title: &str) -> anyhow::Result<()> {
    let root = BitMapBackend::new(path, (SIZE.0, SIZE.1 + 200)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let root = root.titled(title, (FONT, 22)).map_err(err)?;
    let (top, bottom) = root.split_vertically(((SIZE.1 + 160) / 2) as i32);
    let series: [Series; 3] = [
        (
            "store writer thread",
            |s| s.writer_cpu,
            RGBColor(200, 30, 30),
        ),
        (
            "store flusher thread",
            |s| s.flusher_cpu,
            RGBColor(230, 120, 0),
        ),
        (
            "worker threads (all 8)",
            |s| s.workers_cpu,
            RGBColor(30, 60, 200),
        ),
    ];
    let smoothed: Vec<Vec<f64>> = series
        .iter()
        .map(|(_, value, _)| {
            // The workers' share drops below 0 in the last sample, as they exit.
            let values: Vec<f64> = samples.iter().map(|s| value(s).max(0.0) * 100.0).collect();
            moving_average(&values, 15)
        })
        .collect();
    let y_max = smoothed.iter().flatten().copied().fold(10.0, f64::max) * 1.2;
    let mut chart = ChartBuilder::on(&top)
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d(0.0..x_max(samples), 0.0..y_max)
        .map_err(err)?;
    chart
        .configure_mesh()
        .y_desc("% of one core (15 s average)")
        .label_style((FONT, 14))
        .draw()
        .map_err(err)?;
    for ((label, _, color), smooth) in series.into_iter().zip(smoothed) {
        chart
            .draw_series(LineSeries::new(
                samples.iter().zip(smooth).map(|(s, v)| (x(s), v)),
                color.stroke_width(2),
            ))
            .map_err(err)?
            .label(label)
            .legend(legend_line(color));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .label_font((FONT, 14))
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    let load_max = samples.iter().map(|s| s.load1).fold(1.0, f64::max) * 1.1;
    let mut chart = ChartBuilder::on(&bottom)
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(80)
        .build_cartesian_2d(0.0..x_max(samples), 0.0..load_max)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("events in the store (millions)")
        .y_desc("machine load average (1 min; 2 cores)")
        .label_style((FONT, 14))
        .draw()
        .map_err(err)?;
    chart
        .draw_series(LineSeries::new(
            samples.iter().map(|s| (x(s), s.load1)),
            RGBColor(100, 100, 100).stroke_width(2),
        ))
        .map_err(err)?;
    root.present().map_err(err)?;
    Ok(())
}

/// Draws `<name>-throughput.png`, `<name>-latency.png`, `<name>-resources.png` and
/// `<name>-cpu.png` into `out`; `what` describes the run in the titles.
pub fn draw_all(
    samples: &[Sample],
    out: &Path,
    font: &Path,
    name: &str,
    what: &str,
) -> anyhow::Result<()> {
    anyhow::ensure!(!samples.is_empty(), "no samples to draw");
    register_font(font)?;
    std::fs::create_dir_all(out)?;
    let events = samples.last().map_or(0, |s| s.events);
    let what = format!("{what}, {:.1} M events", events as f64 / 1e6);
    throughput(
        samples,
        &out.join(format!("{name}-throughput.png")),
        &format!("Sustained run: throughput ({what})"),
    )?;
    latency(
        samples,
        &out.join(format!("{name}-latency.png")),
        &format!("Sustained run: append latency per second ({what})"),
    )?;
    resources(
        samples,
        &out.join(format!("{name}-resources.png")),
        &format!("Sustained run: RSS and disk ({what})"),
    )?;
    cpu(
        samples,
        &out.join(format!("{name}-cpu.png")),
        &format!("Sustained run: CPU by thread and machine load ({what})"),
    )?;
    Ok(())
}
