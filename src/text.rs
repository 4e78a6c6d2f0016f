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

#[cfg(test)]
mod tests {
    #[test]
    fn singular_for_one_only() {
        assert_eq!(super::count(1u32, "user"), "1 user");
        assert_eq!(super::count(0u32, "user"), "0 users");
        assert_eq!(super::count(2u64, "fold"), "2 folds");
    }
}
