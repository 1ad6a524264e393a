//! Small formatting helpers shared by the commands: durations and progress bars.

/// "1 h 02 min", "3 min 05 s", "12 s".
pub fn human_secs(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    match s {
        0..=59 => format!("{s} s"),
        60..=3599 => format!("{} min {:02} s", s / 60, s % 60),
        _ => format!("{} h {:02} min", s / 3600, (s % 3600) / 60),
    }
}

/// A progress bar on stderr: `[=====>   ] {what}, ETA`.
pub fn progress_bar(len: u64, what: &str, message: String) -> indicatif::ProgressBar {
    let pb = indicatif::ProgressBar::new(len);
    let template = format!("{{msg}} [{{bar:40}}] {what}, ETA {{eta}}");
    pb.set_style(
        indicatif::ProgressStyle::with_template(&template)
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    pb.set_message(message);
    pb
}

#[cfg(test)]
mod tests {
    #[test]
    fn durations() {
        assert_eq!(super::human_secs(12.4), "12 s");
        assert_eq!(super::human_secs(185.0), "3 min 05 s");
        assert_eq!(super::human_secs(3720.0), "1 h 02 min");
    }
}
