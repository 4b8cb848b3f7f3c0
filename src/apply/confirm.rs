//! The confirmation prompt: only `yes` is accepted.

use std::io::{self, BufRead};

/// The prompt shown before applying `n` changes.
#[must_use]
pub fn prompt(n: usize) -> String {
    format!("Apply these {n} changes? Only 'yes' is accepted: ")
}

/// The prompt before applying the `remaining` of a plan's `total` changes (an earlier run of the plan
/// did the rest).
#[must_use]
pub fn prompt_resuming(remaining: usize, total: usize) -> String {
    if remaining == total {
        prompt(total)
    } else {
        format!(
            "Apply the remaining {remaining} of these {total} changes ({} were done by an earlier run)? Only 'yes' is accepted: ",
            total - remaining
        )
    }
}

/// Reads one answer; true only for `yes`.
///
/// # Errors
/// Reading failed.
pub fn answer(input: &mut dyn BufRead) -> io::Result<bool> {
    let mut line = String::new();
    input.read_line(&mut line)?;
    Ok(line.trim() == "yes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resumed_prompt_counts_what_is_left_of_the_same_total() {
        assert_eq!(prompt_resuming(15, 15), prompt(15));
        assert_eq!(
            prompt_resuming(4, 15),
            "Apply the remaining 4 of these 15 changes (11 were done by an earlier run)? Only 'yes' is accepted: "
        );
    }

    #[test]
    fn only_yes_is_accepted() {
        for (text, ok) in [
            ("yes\n", true),
            ("yes", true),
            ("y\n", false),
            ("YES\n", false),
            ("", false),
            ("no\n", false),
        ] {
            assert_eq!(answer(&mut text.as_bytes()).unwrap(), ok, "{text:?}");
        }
    }
}
