//! Humane durations in the config: `"90s"`, `"30m"`, `"1h"`, `"2d"`, `"1h30m"`, `"250ms"`.

use std::time::Duration;

/// Longest duration any key accepts: beyond it a value is a typo, not a setting.
const MAX_SECS: u64 = 10 * 366 * 86_400;

/// Parses a sequence of `<whole number><unit>` parts (units s, m, h, d; spaces allowed between
/// parts; `ms` for milliseconds). Every problem is one sentence naming what is wrong with `text`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let help =
        "use a whole number and a unit: ms, s, m, h or d (for example \"30m\", \"1h\", \"2d\")";
    let s = text.trim();
    if s.is_empty() {
        return Err(format!("is empty; {help}"));
    }
    // In milliseconds.
    let mut total: u64 = 0;
    let max_ms = MAX_SECS * 1_000;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits == 0 {
            return Err(format!("\"{text}\" is not a duration; {help}"));
        }
        let (number, after) = rest.split_at(digits);
        let after = after.trim_start();
        let unit_len = after.len()
            - after
                .trim_start_matches(|c: char| c.is_ascii_alphabetic())
                .len();
        let (unit, after) = after.split_at(unit_len);
        let per = match unit {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "" => return Err(format!("\"{text}\" has a number without a unit; {help}")),
            other => {
                return Err(format!(
                    "\"{text}\" has an unknown unit \"{other}\"; {help}"
                ));
            }
        };
        let part = number
            .parse::<u64>()
            .ok()
            .and_then(|n| n.checked_mul(per))
            .filter(|n| *n <= max_ms);
        total = match part
            .and_then(|p| total.checked_add(p))
            .filter(|t| *t <= max_ms)
        {
            Some(t) => t,
            None => return Err(format!("\"{text}\" is longer than 10 years")),
        };
        rest = after.trim_start();
    }
    Ok(Duration::from_millis(total))
}

/// The short form of a duration, as the config would write it: `"1h"`, `"90m"`, `"2d"`.
pub fn format_duration(d: Duration) -> String {
    let s = d.as_secs();
    if d.subsec_millis() != 0 {
        return format!("{}ms", d.as_millis());
    }
    match s {
        0 => "0s".into(),
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3_600 == 0 => format!("{}h", s / 3_600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn humane_durations_parse_and_print() {
        let secs = |t: &str| parse_duration(t).map(|d| d.as_secs());
        assert_eq!(secs("30m"), Ok(1_800));
        assert_eq!(secs("1h"), Ok(3_600));
        assert_eq!(secs("2d"), Ok(172_800));
        assert_eq!(secs("1h30m"), Ok(5_400));
        assert_eq!(secs(" 1h 30 m "), Ok(5_400));
        assert_eq!(secs("90s"), Ok(90));
        assert_eq!(parse_duration("50ms"), Ok(Duration::from_millis(50)));
        assert_eq!(parse_duration("1s 500ms"), Ok(Duration::from_millis(1_500)));
        assert_eq!(format_duration(Duration::from_millis(1_500)), "1500ms");
        for bad in [
            "",
            "1",
            "h",
            "1x",
            "1.5h",
            "-1h",
            "99999999999999999999d",
            "4000d",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert_eq!(format_duration(Duration::from_secs(3_600)), "1h");
        assert_eq!(format_duration(Duration::from_secs(5_400)), "90m");
        assert_eq!(format_duration(Duration::from_secs(172_800)), "2d");
    }
}
