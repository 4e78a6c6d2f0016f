//! Value parsers for numeric flags: each refuses a value outside its range and says the range,
//! so clap prints e.g. `invalid value '0' for '--batch <BATCH>': must be a whole number >= 1
//! (got 0)`. Every numeric flag of every command uses one of these.

use std::fmt::Display;
use std::str::FromStr;

/// The unsigned integer types of the flags, with their largest value.
pub trait Whole: FromStr + PartialOrd + Display + Copy + Send + Sync + 'static {
    const MAX: Self;
}

impl Whole for u32 {
    const MAX: Self = u32::MAX;
}
impl Whole for u64 {
    const MAX: Self = u64::MAX;
}
impl Whole for usize {
    const MAX: Self = usize::MAX;
}

/// A whole number in `min..=max` (`usize`, `u32` or `u64`).
pub fn int_in<T: Whole>(
    min: T,
    max: T,
) -> impl Fn(&str) -> Result<T, String> + Clone + Send + Sync {
    int_range(min, Some(max))
}

/// A whole number ≥ `min`.
pub fn int_at_least<T: Whole>(min: T) -> impl Fn(&str) -> Result<T, String> + Clone + Send + Sync {
    int_range(min, None)
}

fn int_range<T: Whole>(
    min: T,
    max: Option<T>,
) -> impl Fn(&str) -> Result<T, String> + Clone + Send + Sync {
    move |s: &str| {
        let range = match max {
            Some(max) => format!("in {min}..={max}"),
            None => format!(">= {min}"),
        };
        let t = s.trim();
        let digits = t.strip_prefix('+').unwrap_or(t);
        let v: T = t.parse().map_err(|_| {
            // Digits that do not fit the type are a number, just too large: say the largest.
            if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
                format!(
                    "must be a whole number from {min} to {} (got {digits}: too large)",
                    max.unwrap_or(T::MAX)
                )
            } else {
                format!("must be a whole number {range} (got {s:?})")
            }
        })?;
        if v < min || max.is_some_and(|m| v > m) {
            return Err(format!("must be a whole number {range} (got {v})"));
        }
        Ok(v)
    }
}

/// A whole number ≥ 1.
pub fn positive_usize(s: &str) -> Result<usize, String> {
    int_at_least(1)(s)
}

/// A whole number ≥ 1.
pub fn positive_u32(s: &str) -> Result<u32, String> {
    int_at_least(1)(s)
}

/// An end of a real interval: included (`[a`), excluded (`(a`), or unbounded.
#[derive(Clone, Copy, Debug)]
pub enum End {
    Incl(f64),
    Excl(f64),
    Inf,
}

/// `[lo, hi]`, `(lo, hi)`, `[lo, ∞)`… as text.
fn interval(lo: End, hi: End) -> String {
    let l = match lo {
        End::Incl(a) => format!("[{a}"),
        End::Excl(a) => format!("({a}"),
        End::Inf => "(-inf".into(),
    };
    let h = match hi {
        End::Incl(b) => format!("{b}]"),
        End::Excl(b) => format!("{b})"),
        End::Inf => "inf)".into(),
    };
    format!("{l}, {h}")
}

/// Whether `v` (finite) lies in the interval.
fn inside(v: f64, lo: End, hi: End) -> bool {
    let above = match lo {
        End::Incl(a) => v >= a,
        End::Excl(a) => v > a,
        End::Inf => true,
    };
    let below = match hi {
        End::Incl(b) => v <= b,
        End::Excl(b) => v < b,
        End::Inf => true,
    };
    above && below
}

/// A finite real number in the interval `lo`–`hi` (NaN and infinities refused).
pub fn real_in(lo: End, hi: End) -> impl Fn(&str) -> Result<f64, String> + Clone + Send + Sync {
    move |s: &str| {
        let range = interval(lo, hi);
        let v: f64 = s
            .trim()
            .parse()
            .map_err(|_| format!("must be a number in {range} (got {s:?})"))?;
        if !v.is_finite() || !inside(v, lo, hi) {
            return Err(format!("must be a finite number in {range} (got {v})"));
        }
        // -0 is 0; kept, it would be printed and stored as "-0".
        Ok(v + 0.0)
    }
}

/// As [`real_in`], as an `f32` (the value must also be finite as an `f32`).
pub fn real32_in(lo: End, hi: End) -> impl Fn(&str) -> Result<f32, String> + Clone + Send + Sync {
    move |s: &str| {
        let v = real_in(lo, hi)(s)?;
        let w = v as f32;
        if !w.is_finite() {
            return Err(format!(
                "must be a finite number in {} (got {v}, too large)",
                interval(lo, hi)
            ));
        }
        Ok(w)
    }
}

/// A finite number > 0.
pub fn positive_f64(s: &str) -> Result<f64, String> {
    real_in(End::Excl(0.0), End::Inf)(s)
}

/// A finite number ≥ 0.
pub fn non_negative_f64(s: &str) -> Result<f64, String> {
    real_in(End::Incl(0.0), End::Inf)(s)
}

/// A finite number ≥ 0, as an `f32`.
pub fn non_negative_f32(s: &str) -> Result<f32, String> {
    real32_in(End::Incl(0.0), End::Inf)(s)
}

/// A probability: a finite number in [0, 1].
pub fn probability(s: &str) -> Result<f64, String> {
    real_in(End::Incl(0.0), End::Incl(1.0))(s)
}

/// Learning rate: a finite number in (0, 1].
pub fn learning_rate(s: &str) -> Result<f32, String> {
    real32_in(End::Excl(0.0), End::Incl(1.0))(s)
}

/// Dropout probability: [0, 0.95] (a higher one leaves almost no signal).
pub fn dropout(s: &str) -> Result<f32, String> {
    real32_in(End::Incl(0.0), End::Incl(0.95))(s)
}

/// `--similarity`: `auto` (chosen on validation users), `cosine` or `ALPHA,SHRINK,POWER`.
#[derive(Clone, Copy, Debug)]
pub struct SimilarityFlag(pub Option<ainrnn::model::neighbours::Similarity>);

pub fn similarity(s: &str) -> Result<SimilarityFlag, String> {
    if s.eq_ignore_ascii_case("auto") {
        return Ok(SimilarityFlag(None));
    }
    s.parse()
        .map(|sim| SimilarityFlag(Some(sim)))
        .map_err(|e| format!("{e}; or `auto`"))
}

/// `--ensemble`: `auto` (`None`) or a member count in 1..=16.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EnsembleFlag(pub Option<u32>);

pub fn ensemble(s: &str) -> Result<EnsembleFlag, String> {
    if s.eq_ignore_ascii_case("auto") {
        return Ok(EnsembleFlag(None));
    }
    int_in(1u32, ainrnn::train::run::MAX_MEMBERS)(s)
        .map(|n| EnsembleFlag(Some(n)))
        .map_err(|e| format!("{e}; or `auto`"))
}

/// A positive finite regularisation strength (EASE λ).
pub fn positive_f32(s: &str) -> Result<f32, String> {
    real32_in(End::Excl(0.0), End::Inf)(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_enforced_and_named() {
        assert_eq!(positive_usize("3"), Ok(3));
        let e = positive_usize("0").unwrap_err();
        assert!(e.contains(">= 1") && e.contains("got 0"), "{e}");
        assert!(positive_usize("-1").is_err());
        assert!(positive_usize("x").unwrap_err().contains("\"x\""));
        assert_eq!(int_in(1u32, 20)("20"), Ok(20));
        assert!(int_in(1u32, 20)("21").unwrap_err().contains("1..=20"));
        assert_eq!(dropout("0.95"), Ok(0.95));
        let e = dropout("1.5").unwrap_err();
        assert!(e.contains("[0, 0.95]") && e.contains("1.5"), "{e}");
        assert!(dropout("NaN").is_err());
        assert!(learning_rate("0").unwrap_err().contains("(0, 1]"));
        assert!(learning_rate("1e-3").is_ok());
        assert!(non_negative_f32("NaN").is_err());
        assert!(non_negative_f32("inf").is_err());
        assert!(non_negative_f32("1e39").unwrap_err().contains("too large"));
        assert!(non_negative_f32("0").is_ok());
        assert!(probability("1").is_ok() && probability("1.01").is_err());
        assert!(positive_f64("0").is_err() && positive_f64("1e-9").is_ok());
        assert!(non_negative_f64("-0.5").is_err());
    }

    /// A number too large for the type says so and names the largest, not "must be a whole
    /// number >= 0" as if it were no number.
    #[test]
    fn too_large_whole_numbers_name_the_maximum() {
        assert_eq!(
            int_at_least(0u32)("4294967296").unwrap_err(),
            "must be a whole number from 0 to 4294967295 (got 4294967296: too large)"
        );
        let e = int_at_least(0u64)("18446744073709551616").unwrap_err();
        assert!(
            e.contains("from 0 to 18446744073709551615") && e.contains("too large"),
            "{e}"
        );
        let e = int_in(1u32, 20)("99999999999").unwrap_err();
        assert!(e.contains("from 1 to 20") && e.contains("too large"), "{e}");
        assert_eq!(int_at_least(0u32)("4294967295"), Ok(u32::MAX));
        assert!(int_at_least(0u32)("-1")
            .unwrap_err()
            .contains(">= 0 (got \"-1\")"));
        assert!(int_at_least(0u32)("1e3").unwrap_err().contains(">= 0"));
        assert_eq!(probability("-0.0").map(f64::to_bits), Ok(0));
    }
}
