//! Small helpers for messages meant for people.

/// `n` with its noun, singular for 1: `count(1, "user")` is "1 user", `count(3, "user")` "3 users".
/// Nouns whose plural is not `noun + "s"` are not passed here.
pub fn count(n: impl Into<u64>, noun: &str) -> String {
    let n = n.into();
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// The first `max` characters of `s`, with "…" when it had more: for quoting input in a message
/// (a field of a binary file, or of a file without line breaks, may be megabytes long).
pub fn clip(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn clip_keeps_short_text_and_cuts_long_text_on_a_character() {
        assert_eq!(super::clip("abc", 3), "abc");
        assert_eq!(super::clip("abcd", 3), "abc…");
        assert_eq!(super::clip("ééé", 2), "éé…");
        assert_eq!(super::clip("", 0), "");
    }

    #[test]
    fn singular_for_one_only() {
        assert_eq!(super::count(1u32, "user"), "1 user");
        assert_eq!(super::count(0u32, "user"), "0 users");
        assert_eq!(super::count(2u64, "fold"), "2 folds");
    }
}
