//! Clap value parsers over [`crate::units`] and the other typed flags, so a
//! bad value is refused while parsing with the same words as ever (`--NAME
//! "VALUE" is not a ...`), and no flag reaches `config/` as a string.

use std::ffi::OsStr;

use clap::builder::TypedValueParser;
use clap::error::ErrorKind;

use crate::creds::SourceKind;
use crate::units::{self, AgeLimit, Mode, Size, Span};

/// A value parser from a plain function of (flag name, text).
#[derive(Clone, Copy)]
pub struct Checked<T>(fn(&str, &str) -> Result<T, String>);

impl<T> Checked<T> {
    /// Parses with `parse(flag name, text)`.
    pub const fn new(parse: fn(&str, &str) -> Result<T, String>) -> Checked<T> {
        Checked(parse)
    }
}

/// `--cache-size 64MiB`.
pub const SIZE: Checked<Size> = Checked(units::parse_size);
/// `--metadata-ttl 1s`.
pub const SPAN: Checked<Span> = Checked(units::parse_duration);
/// `--abort-stale-uploads 24h|off`.
pub const AGE_LIMIT: Checked<AgeLimit> = Checked(units::parse_age_limit);
/// `--umask 022`.
pub const MODE: Checked<Mode> = Checked(units::parse_mode);
/// `--credential-source env`.
pub const SOURCE_KIND: Checked<SourceKind> = Checked(source_kind);

fn source_kind(_: &str, text: &str) -> Result<SourceKind, String> {
    text.parse()
        .map_err(|e: crate::creds::CredsError| e.to_string())
}

impl<T: Clone + Send + Sync + 'static> TypedValueParser for Checked<T> {
    type Value = T;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &OsStr,
    ) -> Result<T, clap::Error> {
        let name = arg
            .and_then(|a| a.get_long())
            .map_or_else(String::new, |long| format!("--{long}"));
        (self.0)(&name, &value.to_string_lossy()).map_err(|m| {
            clap::Error::raw(ErrorKind::ValueValidation, format!("{m}\n")).with_cmd(cmd)
        })
    }
}
