//! Secrets (passwords, API tokens) read from a file or an environment
//! variable, never written inline: `vigil.toml` ends up in backups, in
//! version control and in bug reports.
//!
//! A secret setting `NAME` appears in a raw struct as two optional fields,
//! `NAME_file` (a path, relative to the configuration file) and `NAME_env`
//! (a variable name). [`resolve`] reads it while the file is validated, so a
//! missing file or variable is a configuration error with file, line and
//! column, and a reload picks up a rotated secret. The value never shows in
//! `Debug` output or in errors.

use std::ffi::OsString;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::Spanned;

use super::error::Diagnostics;

/// Files larger than this are not secrets: probably the wrong path.
const MAX_SECRET_BYTES: u64 = 64 * 1024;

/// A secret value and where it was read from.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret {
    value: String,
    source: SecretSource,
}

/// Where a [`Secret`] was read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// A file, its path resolved against the configuration file's directory.
    File(PathBuf),
    /// An environment variable, by name.
    Env(String),
}

impl Secret {
    /// A secret from a value already in hand (tests, other sources).
    pub fn new(value: impl Into<String>, source: SecretSource) -> Secret {
        Secret {
            value: value.into(),
            source,
        }
    }

    /// The secret itself. A method with a loud name rather than `Deref`, so
    /// that every place the value leaves this type is easy to find.
    pub fn expose(&self) -> &str {
        &self.value
    }

    /// Where the value came from, for messages that must not show it.
    pub fn source(&self) -> &SecretSource {
        &self.source
    }
}

/// Shows where the secret came from, never its value.
impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Secret")
            .field("source", &self.source)
            .field("value", &"<redacted>")
            .finish()
    }
}

/// `file "/etc/vigil/smtp.pass"`, `environment variable SMTP_PASSWORD`.
impl fmt::Display for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretSource::File(path) => write!(f, "file \"{}\"", path.display()),
            SecretSource::Env(name) => write!(f, "environment variable {name}"),
        }
    }
}

/// A secret setting after validation.
#[derive(Debug, Clone, Default)]
pub(crate) enum SecretSetting {
    /// Neither `NAME_file` nor `NAME_env` was written.
    #[default]
    Unset,
    /// Read successfully; the span is the field it came from.
    Set(Secret, Range<usize>),
    /// Written but unusable; the error is already recorded.
    Invalid,
}

/// Resolves the secret setting `name` from its `{name}_file` and
/// `{name}_env` fields, recording an error that names the field and the
/// file or variable when it cannot be read. Relative paths resolve against
/// `base`.
pub(crate) fn resolve(
    diag: &mut Diagnostics<'_>,
    base: &Path,
    name: &str,
    file: Option<&Spanned<PathBuf>>,
    env: Option<&Spanned<String>>,
) -> SecretSetting {
    resolve_with(diag, base, name, file, env, |var| std::env::var_os(var))
}

/// [`resolve`] with the environment passed in, for tests.
pub(crate) fn resolve_with(
    diag: &mut Diagnostics<'_>,
    base: &Path,
    name: &str,
    file: Option<&Spanned<PathBuf>>,
    env: Option<&Spanned<String>>,
    lookup_env: impl Fn(&str) -> Option<OsString>,
) -> SecretSetting {
    match (file, env) {
        (None, None) => SecretSetting::Unset,
        (Some(_), Some(env)) => {
            diag.error(
                &env.span(),
                format!("`{name}_file` and `{name}_env` are both set: use one of them"),
            );
            SecretSetting::Invalid
        }
        (Some(file), None) => {
            let field = format!("{name}_file");
            let path = base.join(file.get_ref());
            match read_file(&path) {
                Ok(value) => {
                    SecretSetting::Set(Secret::new(value, SecretSource::File(path)), file.span())
                }
                Err(why) => {
                    diag.error(&file.span(), format!("`{field}`: {why}"));
                    SecretSetting::Invalid
                }
            }
        }
        (None, Some(env)) => {
            let field = format!("{name}_env");
            let var = env.get_ref();
            match read_env(var, lookup_env) {
                Ok(value) => SecretSetting::Set(
                    Secret::new(value, SecretSource::Env(var.clone())),
                    env.span(),
                ),
                Err(why) => {
                    diag.error(&env.span(), format!("`{field}`: {why}"));
                    SecretSetting::Invalid
                }
            }
        }
    }
}

/// The file's text without its trailing line break (`echo pw > file`
/// writes one).
fn read_file(path: &Path) -> Result<String, String> {
    let shown = path.display();
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read \"{shown}\": {e}"))?;
    if meta.len() > MAX_SECRET_BYTES {
        return Err(format!(
            "\"{shown}\" is {} bytes, too large for a secret (at most {MAX_SECRET_BYTES}); is it the right file?",
            meta.len()
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read \"{shown}\": {e}"))?;
    let text = String::from_utf8(bytes).map_err(|_| format!("\"{shown}\" is not UTF-8 text"))?;
    let value = text.trim_end_matches(['\r', '\n']);
    if value.is_empty() {
        return Err(format!("\"{shown}\" is empty"));
    }
    Ok(value.to_string())
}

fn read_env(var: &str, lookup_env: impl Fn(&str) -> Option<OsString>) -> Result<String, String> {
    if var.is_empty() || var.contains(['=', '\0']) {
        return Err(format!("\"{var}\" is not an environment variable name"));
    }
    let value = lookup_env(var).ok_or_else(|| format!("environment variable {var} is not set"))?;
    let value = value
        .into_string()
        .map_err(|_| format!("environment variable {var} is not valid UTF-8"))?;
    if value.is_empty() {
        return Err(format!("environment variable {var} is empty"));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Case {
        dir: PathBuf,
    }

    impl Case {
        fn new(tag: &str) -> Case {
            let dir =
                std::env::temp_dir().join(format!("vigil-secret-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            Case { dir }
        }
    }

    impl Drop for Case {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    /// Resolves `password` from a TOML snippet's `password_file` and
    /// `password_env`, with `env` as the whole environment.
    fn run(base: &Path, text: &str, env: &[(&str, &str)]) -> (SecretSetting, Vec<String>) {
        #[derive(serde::Deserialize)]
        struct Raw {
            password_file: Option<Spanned<PathBuf>>,
            password_env: Option<Spanned<String>>,
        }
        let raw: Raw = toml::from_str(text).unwrap();
        let mut diag = Diagnostics::new(Path::new("t.toml"), text);
        let setting = resolve_with(
            &mut diag,
            base,
            "password",
            raw.password_file.as_ref(),
            raw.password_env.as_ref(),
            |var| {
                env.iter()
                    .find(|(k, _)| *k == var)
                    .map(|(_, v)| OsString::from(v))
            },
        );
        let errors = diag.finish().iter().map(ToString::to_string).collect();
        (setting, errors)
    }

    #[test]
    fn reads_a_file_relative_to_the_config_without_its_line_break() {
        let case = Case::new("file");
        std::fs::write(case.dir.join("pw"), "s3cret with spaces \r\n").unwrap();
        let (setting, errors) = run(&case.dir, "password_file = \"pw\"\n", &[]);
        assert!(errors.is_empty(), "{errors:?}");
        let SecretSetting::Set(secret, span) = setting else {
            panic!("{setting:?}")
        };
        assert_eq!(secret.expose(), "s3cret with spaces ");
        assert_eq!(secret.source(), &SecretSource::File(case.dir.join("pw")));
        assert_eq!(span.start, "password_file = ".len());
    }

    #[test]
    fn reads_an_environment_variable() {
        let (setting, errors) = run(
            Path::new(""),
            "password_env = \"SMTP_PW\"\n",
            &[("SMTP_PW", "hunter2")],
        );
        assert!(errors.is_empty(), "{errors:?}");
        let SecretSetting::Set(secret, _) = setting else {
            panic!("{setting:?}")
        };
        assert_eq!(secret.expose(), "hunter2");
        assert_eq!(secret.source().to_string(), "environment variable SMTP_PW");
    }

    #[test]
    fn errors_name_the_field_and_the_source() {
        let case = Case::new("errors");
        std::fs::write(case.dir.join("empty"), "\n").unwrap();
        let missing = case.dir.join("missing");
        let cases = [
            (
                "password_env = \"NOPE\"\n".to_string(),
                "t.toml:1:16: `password_env`: environment variable NOPE is not set".to_string(),
            ),
            (
                "password_env = \"EMPTY\"\n".to_string(),
                "t.toml:1:16: `password_env`: environment variable EMPTY is empty".to_string(),
            ),
            (
                "password_file = \"missing\"\n".to_string(),
                format!(
                    "t.toml:1:17: `password_file`: cannot read \"{}\": No such file or directory (os error 2)",
                    missing.display()
                ),
            ),
            (
                "password_file = \"empty\"\n".to_string(),
                format!(
                    "t.toml:1:17: `password_file`: \"{}\" is empty",
                    case.dir.join("empty").display()
                ),
            ),
            (
                "password_file = \"empty\"\npassword_env = \"X\"\n".to_string(),
                "t.toml:2:16: `password_file` and `password_env` are both set: use one of them"
                    .to_string(),
            ),
        ];
        for (text, expected) in cases {
            let (setting, errors) = run(&case.dir, &text, &[("EMPTY", "")]);
            assert!(matches!(setting, SecretSetting::Invalid), "{text}");
            assert_eq!(errors, [expected], "{text}");
        }
        let (setting, errors) = run(&case.dir, "", &[]);
        assert!(matches!(setting, SecretSetting::Unset) && errors.is_empty());
    }

    #[test]
    fn debug_never_shows_the_value() {
        let secret = Secret::new("hunter2", SecretSource::Env("PW".into()));
        let shown = format!("{secret:?} {:?}", SecretSetting::Set(secret.clone(), 0..1));
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(
            shown.contains("<redacted>") && shown.contains("PW"),
            "{shown}"
        );
    }
}
