//! Last.fm-360K user profiles (`usersha1-profile.tsv`): `user<TAB>gender<TAB>age<TAB>country
//! <TAB>signup`, no header. Empty fields mean unknown; of a user listed twice the first profile
//! is kept. Ages are kept as written (the real file
//! has -1337, 1, 2, 3, 8 and 100); [`crate::data::portrait::age_bucket`] decides what is
//! plausible.

use std::collections::HashMap;
use std::path::Path;

use serde::Serialize;

use super::diag::FileReport;
use super::lines::{self, LineReader};
use crate::error::IoError;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Profile {
    /// "m", "f" or "" (unknown).
    pub gender: String,
    pub age: Option<i32>,
    pub country: String,
    pub signup: String,
}

pub fn read_profiles(
    path: &Path,
    strict: bool,
) -> Result<(HashMap<String, Profile>, FileReport), IoError> {
    let (mut reader, _) = LineReader::open(path)?;
    let mut report = FileReport::new(path, "profiles");
    let mut out = HashMap::new();
    while let Some((n, line)) = reader.next_line().map_err(|e| IoError::io(path, e))? {
        report.lines += 1;
        if lines::is_blank(line) {
            report.blank += 1;
            continue;
        }
        match parse_profile(line) {
            // The first profile of a user is kept, as everywhere in `prepare`.
            Ok((user, _)) if out.contains_key(&user) => report.duplicate(n, "user", &user),
            Ok((user, p)) => {
                out.insert(user, p);
                report.accepted += 1;
            }
            Err(reason) => report.reject(n, reason, strict)?,
        }
    }
    report.bytes = reader.bytes_read();
    Ok((out, report))
}

fn parse_profile(line: &[u8]) -> Result<(String, Profile), String> {
    let text = std::str::from_utf8(line).map_err(|_| "not valid UTF-8".to_string())?;
    let f: Vec<&str> = text.split('\t').collect();
    if !(4..=5).contains(&f.len()) {
        return Err(format!(
            "expected 5 tab-separated fields (user, gender, age, country, signup), found {}",
            f.len()
        ));
    }
    let user = f[0].trim();
    if user.is_empty() {
        return Err("empty user id".into());
    }
    let age_s = f[2].trim();
    let age = if age_s.is_empty() {
        None
    } else {
        Some(age_s.parse::<i32>().map_err(|e| match e.kind() {
            std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow => {
                format!(
                    "age {age_s} is out of range (a whole number from {} to {})",
                    i32::MIN,
                    i32::MAX
                )
            }
            _ => format!("age is not an integer: {age_s:?}"),
        })?)
    };
    Ok((
        user.to_string(),
        Profile {
            gender: f[1].trim().to_string(),
            age,
            country: f[3].trim().to_string(),
            signup: f.get(4).map_or("", |s| s.trim()).to_string(),
        },
    ))
}
