//! Line and bar charts as PNG and SVG (plotters), for the comparison report. The font is
//! embedded (DejaVu Sans, `assets/fonts/`), so rendering needs no system fonts.

use std::path::{Path, PathBuf};
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::error::{Error, IoError};
use crate::io::AtomicFile;

const SIZE: (u32, u32) = (960, 600);

pub(crate) fn font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // A failure here only means text is missing; the charts are still drawn.
        let _ = plotters::style::register_font(
            "sans-serif",
            FontStyle::Normal,
            include_bytes!("../../assets/fonts/DejaVuSans.ttf"),
        );
    });
}

/// One named series of `(x, y)` points.
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

fn colour(i: usize) -> RGBColor {
    const C: [RGBColor; 8] = [
        RGBColor(31, 119, 180),
        RGBColor(255, 127, 14),
        RGBColor(44, 160, 44),
        RGBColor(214, 39, 40),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(227, 119, 194),
        RGBColor(127, 127, 127),
    ];
    C[i % C.len()]
}

fn err<E: std::fmt::Debug>(path: &Path) -> impl Fn(E) -> Error + '_ {
    move |e| {
        Error::Io(IoError::Format {
            path: path.to_path_buf(),
            reason: format!("drawing the chart: {e:?}"),
        })
    }
}

fn draw_lines<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    title: &str,
    (xl, yl): (&str, &str),
    series: &[Series],
) -> Result<(), String> {
    root.fill(&WHITE).map_err(|e| format!("{e:?}"))?;
    let pts = series.iter().flat_map(|s| s.points.iter());
    let (mut x0, mut x1, mut y1) = (f64::MAX, f64::MIN, 0.0f64);
    for &(x, y) in pts {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y1 = y1.max(y);
    }
    if x0 > x1 {
        (x0, x1) = (0.0, 1.0);
    }
    if x0 == x1 {
        x1 = x0 + 1.0;
    }
    let y1 = if y1 > 0.0 { y1 * 1.1 } else { 1.0 };
    // Whole x values (epochs, k): ticks at whole numbers only, at most 12 of them (2 epochs
    // had ticks 1.0, 1.1, … 2.0).
    let whole = series
        .iter()
        .flat_map(|s| s.points.iter())
        .all(|p| p.0.fract() == 0.0);
    let x_ticks = if whole {
        ((x1 - x0) as usize + 1).min(12)
    } else {
        10
    };
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 24))
        .margin(20)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(x0..x1, 0.0..y1)
        .map_err(|e| format!("{e:?}"))?;
    chart
        .configure_mesh()
        .x_desc(xl)
        .y_desc(yl)
        .x_labels(x_ticks)
        .x_label_formatter(&|x| {
            if x.fract() == 0.0 {
                format!("{x:.0}")
            } else if whole {
                String::new()
            } else {
                format!("{x:.1}")
            }
        })
        .draw()
        .map_err(|e| format!("{e:?}"))?;
    for (i, s) in series.iter().enumerate() {
        let c = colour(i);
        chart
            .draw_series(LineSeries::new(s.points.clone(), c.stroke_width(2)))
            .map_err(|e| format!("{e:?}"))?
            .label(s.name.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
        chart
            .draw_series(s.points.iter().map(|&p| Circle::new(p, 3, c.filled())))
            .map_err(|e| format!("{e:?}"))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(|e| format!("{e:?}"))?;
    root.present().map_err(|e| format!("{e:?}"))
}

fn draw_bars<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    title: &str,
    yl: &str,
    bars: &[(String, f64)],
) -> Result<(), String> {
    root.fill(&WHITE).map_err(|e| format!("{e:?}"))?;
    let n = bars.len().max(1);
    let ymax = bars.iter().map(|b| b.1).fold(0.0f64, f64::max);
    let ymax = if ymax > 0.0 { ymax * 1.15 } else { 1.0 };
    let names: Vec<String> = bars.iter().map(|b| b.0.clone()).collect();
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 24))
        .margin(20)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..n as f64, 0.0..ymax)
        .map_err(|e| format!("{e:?}"))?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n * 2 + 1)
        .x_label_formatter(&|x| bar_label(&names, *x))
        .y_desc(yl)
        .draw()
        .map_err(|e| format!("{e:?}"))?;
    chart
        .draw_series(bars.iter().enumerate().map(|(i, b)| {
            Rectangle::new(
                [(i as f64 + 0.15, 0.0), (i as f64 + 0.85, b.1)],
                colour(i).filled(),
            )
        }))
        .map_err(|e| format!("{e:?}"))?;
    root.present().map_err(|e| format!("{e:?}"))
}

/// Renders into an [`AtomicFile`] temporary (same extension, so the encoder picks the format):
/// a half-drawn chart never replaces a finished one.
fn atomically(path: &Path, draw: impl FnOnce(&Path) -> Result<(), String>) -> Result<(), Error> {
    let out = AtomicFile::new(path);
    draw(out.temp()).map_err(err(path))?;
    Ok(out.commit()?)
}

/// Writes `<stem>.png` and `<stem>.svg`; returns both paths.
pub fn line_chart(
    stem: &Path,
    title: &str,
    labels: (&str, &str),
    series: &[Series],
) -> Result<Vec<PathBuf>, Error> {
    font();
    let png = stem.with_extension("png");
    let svg = stem.with_extension("svg");
    atomically(&png, |t| {
        draw_lines(
            BitMapBackend::new(t, SIZE).into_drawing_area(),
            title,
            labels,
            series,
        )
    })?;
    atomically(&svg, |t| {
        draw_lines(
            SVGBackend::new(t, SIZE).into_drawing_area(),
            title,
            labels,
            series,
        )
    })?;
    Ok(vec![png, svg])
}

/// Writes `<stem>.png` and `<stem>.svg`; returns both paths.
pub fn bar_chart(
    stem: &Path,
    title: &str,
    y_label: &str,
    bars: &[(String, f64)],
) -> Result<Vec<PathBuf>, Error> {
    font();
    let png = stem.with_extension("png");
    let svg = stem.with_extension("svg");
    atomically(&png, |t| {
        draw_bars(
            BitMapBackend::new(t, SIZE).into_drawing_area(),
            title,
            y_label,
            bars,
        )
    })?;
    atomically(&svg, |t| {
        draw_bars(
            SVGBackend::new(t, SIZE).into_drawing_area(),
            title,
            y_label,
            bars,
        )
    })?;
    Ok(vec![png, svg])
}

/// The label under bar `i` of a bar chart whose bars stand on `[i, i + 1)`: the bar's name at
/// the bar's centre, nothing at the other tick marks.
pub(crate) fn bar_label(names: &[String], x: f64) -> String {
    let i = x.floor() as usize;
    if (x - i as f64 - 0.5).abs() < 0.26 {
        names.get(i).cloned().unwrap_or_default()
    } else {
        String::new()
    }
}
