//! Plausible ranges of the MSD song fields. A value outside its field's range (tempo 1e20, year
//! 99999999999, an infinite loudness) is damage, not music: taken as known, one such value
//! would dominate its song-vector column after z-scoring. It is taken as unknown instead, like
//! the MSD's own markers (tempo, duration or year 0, NaN), and counted per field so `prepare`
//! can say which file held how many ([`crate::data::diag::FileReport::implausible`]). The
//! screening of a song is `crate::data::msd::screen`: this file depends on nothing.
//!
//! Ranges: tempo (0, 500] BPM, duration (0, 86400] s (one day), loudness [-100, 10] dB, year
//! [1860, 2100], key 0..=11, mode 0 or 1; the segment statistics: timbre means and standard
//! deviations within [-1000, 1000] (the MSD's timbre coefficients lie within a few hundred),
//! chroma (pitch) means and standard deviations within [0, 1], `segments_loudness_max` mean within
//! [-100, 10] dB and standard deviation within [0, 110] dB. The bundled data lies well inside them
//! (subset CSV: tempo up to 263, duration up to 1820 s, loudness -51.6..0.6, years 1926..2010).

/// The plausible values of one field, `lo..=hi` (`lo` excluded when `lo_open`).
#[derive(Clone, Copy, Debug)]
pub struct Bounds {
    pub field: &'static str,
    pub lo: f64,
    pub lo_open: bool,
    pub hi: f64,
    pub unit: &'static str,
}

impl Bounds {
    pub fn contains(&self, x: f64) -> bool {
        (if self.lo_open {
            x > self.lo
        } else {
            x >= self.lo
        }) && x <= self.hi
    }

    /// The range as text, e.g. `(0, 500] BPM`.
    pub fn describe(&self) -> String {
        let l = if self.lo_open { "(" } else { "[" };
        let u = if self.unit.is_empty() {
            String::new()
        } else {
            format!(" {}", self.unit)
        };
        format!("{l}{}, {}]{u}", self.lo, self.hi)
    }
}

const fn b(field: &'static str, lo: f64, lo_open: bool, hi: f64, unit: &'static str) -> Bounds {
    Bounds {
        field,
        lo,
        lo_open,
        hi,
        unit,
    }
}

pub const TEMPO: Bounds = b("tempo", 0.0, true, 500.0, "BPM");
pub const DURATION: Bounds = b("duration", 0.0, true, 86_400.0, "s");
pub const LOUDNESS: Bounds = b("loudness", -100.0, false, 10.0, "dB");
pub const YEAR: Bounds = b("year", 1860.0, false, 2100.0, "");
pub const KEY: Bounds = b("key", 0.0, false, 11.0, "");
pub const MODE: Bounds = b("mode", 0.0, false, 1.0, "");
pub const TIMBRE: Bounds = b("segments_timbre mean/std", -1000.0, false, 1000.0, "");
pub const PITCH: Bounds = b("segments_pitches mean/std", 0.0, false, 1.0, "");
pub const LOUDNESS_MAX_MEAN: Bounds = b("segments_loudness_max mean", -100.0, false, 10.0, "dB");
pub const LOUDNESS_MAX_STD: Bounds = b("segments_loudness_max std", 0.0, false, 110.0, "dB");

/// One value taken as unknown: its field's range and the value as read.
#[derive(Clone, Copy, Debug)]
pub struct Finding {
    pub bounds: &'static Bounds,
    pub value: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_read_as_written() {
        assert_eq!(TEMPO.describe(), "(0, 500] BPM");
        assert_eq!(YEAR.describe(), "[1860, 2100]");
        assert!(!TEMPO.contains(0.0) && TEMPO.contains(500.0) && !TEMPO.contains(f64::INFINITY));
        assert!(LOUDNESS.contains(-100.0) && !LOUDNESS.contains(f64::NAN));
    }
}
