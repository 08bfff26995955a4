//! Units of the command line: sizes (`64MiB`), durations (`500ms`, `1.5`),
//! ages that may be `off`, and octal modes. Each value type parses the way
//! the flags accept it and prints the way `--help` shows a default, so a
//! default written once as a number is shown from that number. Plain Rust
//! (no clap): `cli/` uses these as value parsers, `config/` reads them.

use std::fmt;
use std::time::Duration;

/// A size in bytes, parsed from `1048576`, `64MiB`, `64M`, `1G`, `512k`
/// (binary units) and printed in the largest unit that divides it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Size(pub u64);

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let units = [(40, "TiB"), (30, "GiB"), (20, "MiB"), (10, "KiB")];
        for (shift, unit) in units {
            if self.0 > 0 && self.0 % (1 << shift) == 0 {
                return write!(f, "{}{unit}", self.0 >> shift);
            }
        }
        write!(f, "{}", self.0)
    }
}

/// Parses a [`Size`]; `name` is the flag, for the message.
pub fn parse_size(name: &str, value: &str) -> Result<Size, String> {
    let v = value.trim();
    let digits = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (number, unit) = v.split_at(digits);
    let bad = || format!("{name} {value:?} is not a size such as 64MiB");
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => return Err(bad()),
    };
    number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1 << shift))
        .filter(|n| *n > 0)
        .map(Size)
        .ok_or_else(bad)
}

/// A duration, parsed from `1s`, `500ms`, `5m`, `1h` or plain seconds
/// (`1.5`) and printed as whole hours, seconds or milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span(pub Duration);

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        if d.subsec_nanos() % 1_000_000 != 0 {
            write!(f, "{}", d.as_secs_f64())
        } else if d.subsec_millis() != 0 {
            write!(f, "{}ms", d.as_millis())
        } else if d.as_secs() >= 3600 && d.as_secs() % 3600 == 0 {
            write!(f, "{}h", d.as_secs() / 3600)
        } else {
            write!(f, "{}s", d.as_secs())
        }
    }
}

/// Parses a [`Span`]; `name` is the flag, for the message.
pub fn parse_duration(name: &str, value: &str) -> Result<Span, String> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<f64>() {
        if secs >= 0.0 && secs.is_finite() {
            return Ok(Span(Duration::from_secs_f64(secs)));
        }
    }
    humantime::parse_duration(v)
        .map(Span)
        .map_err(|_| format!("{name} {value:?} is not a duration such as 1s or 500ms"))
}

/// An age limit: a [`Span`], or `off` (also `never`) for none.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AgeLimit(pub Option<Duration>);

impl fmt::Display for AgeLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(age) => Span(age).fmt(f),
            None => f.write_str("off"),
        }
    }
}

/// Parses an [`AgeLimit`]; `name` is the flag, for the message.
pub fn parse_age_limit(name: &str, value: &str) -> Result<AgeLimit, String> {
    match value {
        "off" | "never" => Ok(AgeLimit(None)),
        age => parse_duration(name, age).map(|s| AgeLimit(Some(s.0))),
    }
}

/// Permission bits, parsed from octal (`022`, `0644`, `0o755`) up to 07777.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mode(pub u16);

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04o}", self.0)
    }
}

/// Parses a [`Mode`]; `name` is the flag, for the message.
pub fn parse_mode(name: &str, value: &str) -> Result<Mode, String> {
    u16::from_str_radix(value.trim_start_matches("0o"), 8)
        .ok()
        .filter(|m| *m <= 0o7777)
        .map(Mode)
        .ok_or_else(|| format!("{name} {value:?} is not an octal mode such as 0644"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sizes() {
        assert_eq!(parse_size("x", "64MiB"), Ok(Size(64 << 20)));
        assert_eq!(parse_size("x", "1G"), Ok(Size(1 << 30)));
        assert_eq!(parse_size("x", "4096"), Ok(Size(4096)));
        assert_eq!(parse_size("x", "512k"), Ok(Size(512 << 10)));
        assert!(parse_size("x", "0").is_err());
        assert_eq!(
            parse_size("--cache-size", "lots").unwrap_err(),
            "--cache-size \"lots\" is not a size such as 64MiB"
        );
    }

    #[test]
    fn prints_sizes_as_help_shows_them() {
        assert_eq!(Size(256 << 20).to_string(), "256MiB");
        assert_eq!(Size(16 << 30).to_string(), "16GiB");
        assert_eq!(Size(1 << 20).to_string(), "1MiB");
        assert_eq!(Size(1000).to_string(), "1000");
        for text in ["256MiB", "16GiB", "4KiB", "1000"] {
            assert_eq!(parse_size("x", text).unwrap().to_string(), text);
        }
    }

    #[test]
    fn parses_durations() {
        let ms = |n| Ok(Span(Duration::from_millis(n)));
        assert_eq!(parse_duration("x", "500ms"), ms(500));
        assert_eq!(parse_duration("x", "2.5"), ms(2500));
        assert_eq!(parse_duration("x", "5m"), ms(300_000));
        assert_eq!(parse_duration("x", "24h"), ms(86_400_000));
        assert!(
            parse_duration("--metadata-ttl", "soon")
                .unwrap_err()
                .contains("not a duration")
        );
    }

    #[test]
    fn prints_durations_as_help_shows_them() {
        for text in ["60s", "120s", "1s", "500ms", "1h", "24h", "65s", "0s"] {
            assert_eq!(parse_duration("x", text).unwrap().to_string(), text);
        }
        assert_eq!(Span(Duration::from_micros(1500)).to_string(), "0.0015");
    }

    #[test]
    fn age_limits_may_be_off() {
        assert_eq!(parse_age_limit("x", "off"), Ok(AgeLimit(None)));
        assert_eq!(parse_age_limit("x", "never"), Ok(AgeLimit(None)));
        let day = AgeLimit(Some(Duration::from_secs(86_400)));
        assert_eq!(parse_age_limit("x", "24h"), Ok(day));
        assert_eq!(day.to_string(), "24h");
        assert_eq!(AgeLimit(None).to_string(), "off");
        assert!(parse_age_limit("x", "later").is_err());
    }

    #[test]
    fn parses_octal_modes() {
        assert_eq!(parse_mode("x", "022"), Ok(Mode(0o22)));
        assert_eq!(parse_mode("x", "0o755"), Ok(Mode(0o755)));
        assert_eq!(Mode(0o644).to_string(), "0644");
        assert!(parse_mode("--umask", "99").unwrap_err().contains("octal"));
        assert!(parse_mode("x", "17777").is_err());
    }
}
