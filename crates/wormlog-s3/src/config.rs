//! Where the S3 endpoint, region and credentials come from, read the way
//! the AWS CLI and SDKs read them, so a machine already set up for `aws s3`
//! needs nothing more: explicit overrides, then the environment, then the
//! profile in the shared config and credentials files.
//!
//! Only static keys are read. A profile that gets its keys by running
//! something (`credential_process`, SSO, an assumed role, web identity) is
//! refused with the command that turns it into environment variables: the
//! engine runs no programs and speaks to no STS.

use std::path::{Path, PathBuf};
use wormlog::{Error, Result};

/// Settings that take precedence over the environment and the profile, as
/// the AWS CLI's `--profile`, `--endpoint-url` and `--region` do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct S3Overrides {
    /// The profile to read (else `AWS_PROFILE`, else `default`).
    pub profile: Option<String>,
    /// The endpoint URL (else `AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL`, the
    /// profile's `endpoint_url`, else AWS's endpoint for the region).
    pub endpoint: Option<String>,
    /// The region (else `AWS_REGION`, `AWS_DEFAULT_REGION`, the profile's
    /// `region`, else `us-east-1`).
    pub region: Option<String>,
}

/// What the sources resolved to.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Resolved {
    pub endpoint: String,
    pub region: String,
    pub key: String,
    pub secret: String,
    pub token: Option<String>,
    /// Where the keys came from, for messages (never the keys).
    pub source: String,
}

impl std::fmt::Debug for Resolved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolved")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

fn configure(what: impl std::fmt::Display, detail: impl std::fmt::Display) -> Error {
    Error::Remote {
        op: "configure",
        what: what.to_string(),
        detail: detail.to_string(),
    }
}

/// The keys of section `[name]` of an INI file as the AWS CLI writes them
/// (`key = value` lines, `#` and `;` comments); `None` if there is no
/// such section. Nested `s3 =` blocks (indented lines) are skipped.
fn section(text: &str, name: &str) -> Option<Vec<(String, String)>> {
    let mut found = None;
    let mut in_section = false;
    for line in text.lines() {
        let indented = line.starts_with([' ', '\t']);
        let line = line.trim();
        if line.is_empty() || line.starts_with(['#', ';']) {
            continue;
        }
        // A header may carry a comment after it: `[prod] ; production`.
        let header = line.strip_prefix('[').and_then(|l| {
            let (h, after) = l.split_once(']')?;
            let after = after.trim();
            (after.is_empty() || after.starts_with(['#', ';'])).then_some(h)
        });
        if line.starts_with('[') {
            // A line that opens a section but is not a header ends the one
            // before, so its keys never land in another profile.
            in_section = header.is_some_and(|h| h.trim() == name);
            if in_section {
                found.get_or_insert_with(Vec::new);
            }
            continue;
        }
        if !in_section || indented {
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim().to_string());
            if let Some(keys) = found.as_mut() {
                keys.push((k, v));
            }
        }
    }
    found
}

fn get<'a>(keys: &'a [(String, String)], name: &str) -> Option<&'a str> {
    // A later line wins, as in the AWS CLI.
    keys.iter()
        .rev()
        .find(|(k, v)| k == name && !v.is_empty())
        .map(|(_, v)| v.as_str())
}

/// Settings that make a profile's keys come from somewhere wormlog does
/// not go.
const UNSUPPORTED: &[&str] = &[
    "credential_process",
    "sso_session",
    "sso_start_url",
    "role_arn",
    "web_identity_token_file",
];

/// Resolves from `env` (a variable's value, if set and not empty) and
/// `read` (a file's text, if it exists). Pure, so that the precedence is
/// tested without touching the process's environment or home.
/// The AWS CLI's precedence, flag then environment then profile, for the
/// files, region, endpoint and keys, in the order the CLI applies them:
/// the profile's sections first (`profile_of`), then region and endpoint,
/// then the keys (`keys_of`).
pub(crate) fn resolve(
    url: &str,
    over: &S3Overrides,
    env: &dyn Fn(&str) -> Option<String>,
    read: &dyn Fn(&Path) -> Result<Option<String>>,
) -> Result<Resolved> {
    let p = profile_of(url, over, env, read)?;
    let region = over
        .region
        .clone()
        .or_else(|| env("AWS_REGION"))
        .or_else(|| env("AWS_DEFAULT_REGION"))
        .or_else(|| p.config_setting("region"))
        .or_else(|| p.creds_setting("region"))
        .unwrap_or_else(|| "us-east-1".into());
    // It goes into the endpoint's host name and the signature: a value
    // like `evil.example#` must not send the log elsewhere.
    if region.is_empty()
        || !region
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(configure(
            url,
            format!("region {region:?} is not a region name (letters, digits, - and _)"),
        ));
    }
    let endpoint = over
        .endpoint
        .clone()
        .or_else(|| env("AWS_ENDPOINT_URL_S3"))
        .or_else(|| env("AWS_ENDPOINT_URL"))
        .or_else(|| p.config_setting("endpoint_url"))
        .unwrap_or_else(|| format!("https://s3.{region}.amazonaws.com"));
    let (key, secret, token, source) = keys_of(url, over, env, &p)?;
    Ok(Resolved {
        endpoint,
        region,
        key,
        secret,
        token,
        source,
    })
}

/// A profile's sections of the config and credentials files, and what
/// `resolve` says about them when they fall short.
struct Profile {
    name: String,
    config_path: Option<PathBuf>,
    creds_path: Option<PathBuf>,
    config: Option<Vec<(String, String)>>,
    creds: Option<Vec<(String, String)>>,
    /// Files that could not be read (named if the keys are then missing).
    unreadable: Vec<String>,
}

impl Profile {
    fn config_setting(&self, name: &str) -> Option<String> {
        self.config
            .as_deref()
            .and_then(|k| get(k, name))
            .map(str::to_string)
    }
    fn creds_setting(&self, name: &str) -> Option<String> {
        self.creds
            .as_deref()
            .and_then(|k| get(k, name))
            .map(str::to_string)
    }
    /// A setting of the profile: the credentials file's, then the config's.
    fn setting(&self, name: &str) -> Option<String> {
        self.creds_setting(name)
            .or_else(|| self.config_setting(name))
    }
    fn unreadable_note(&self) -> String {
        if self.unreadable.is_empty() {
            String::new()
        } else {
            format!(" (unreadable: {})", self.unreadable.join("; "))
        }
    }
}

/// The profile asked for (`--profile`, `AWS_PROFILE`, else `default`) in
/// the shared config and credentials files.
fn profile_of(
    url: &str,
    over: &S3Overrides,
    env: &dyn Fn(&str) -> Option<String>,
    read: &dyn Fn(&Path) -> Result<Option<String>>,
) -> Result<Profile> {
    let home = env("HOME").map(PathBuf::from);
    let file = |var: &str, default: &str| -> Option<PathBuf> {
        env(var)
            .map(PathBuf::from)
            .or_else(|| home.as_ref().map(|h| h.join(".aws").join(default)))
    };
    let explicit = over.profile.clone().or_else(|| env("AWS_PROFILE"));
    let name = explicit.clone().unwrap_or_else(|| "default".into());
    let config_path = file("AWS_CONFIG_FILE", "config");
    let creds_path = file("AWS_SHARED_CREDENTIALS_FILE", "credentials");
    // A file that cannot be read counts as missing (as in the AWS CLI: a
    // service whose HOME is off limits still runs on its environment),
    // and is named if the keys are then not found.
    // A file named by its variable must be read, though: its settings
    // (an endpoint above all) were asked for.
    let mut unreadable = Vec::new();
    let mut load = |p: &Option<PathBuf>, var: &str| match p.as_deref().map(read) {
        Some(Ok(text)) => Ok(text),
        Some(Err(e)) if env(var).is_some() => Err(configure(url, format!("{var}: {e}"))),
        Some(Err(e)) => {
            unreadable.push(e.to_string());
            Ok(None)
        }
        None => Ok(None),
    };
    let config_text = load(&config_path, "AWS_CONFIG_FILE")?;
    let creds_text = load(&creds_path, "AWS_SHARED_CREDENTIALS_FILE")?;
    // In the config file a profile's section is `[profile NAME]`, except
    // the default's, which may be either; in the credentials file it is
    // `[NAME]`.
    let config = config_text.as_deref().and_then(|t| {
        section(t, &format!("profile {name}"))
            .or_else(|| (name == "default").then(|| section(t, "default")).flatten())
    });
    let creds = creds_text.as_deref().and_then(|t| section(t, &name));
    let p = Profile {
        name,
        config_path,
        creds_path,
        config,
        creds,
        unreadable,
    };
    if explicit.is_some() && p.config.is_none() && p.creds.is_none() {
        return Err(configure(
            url,
            format!(
                "profile {:?} is in neither {} nor {}{}",
                p.name,
                shown(&p.config_path),
                shown(&p.creds_path),
                p.unreadable_note()
            ),
        ));
    }
    Ok(p)
}

/// Key, secret, session token and where they came from: the
/// environment's, unless a profile was named here (an explicit
/// --profile), as in the AWS CLI; else the profile's static keys.
fn keys_of(
    url: &str,
    over: &S3Overrides,
    env: &dyn Fn(&str) -> Option<String>,
    p: &Profile,
) -> Result<(String, String, Option<String>, String)> {
    if over.profile.is_none() {
        if let (Some(k), Some(s)) = (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
            let source = "the environment (AWS_ACCESS_KEY_ID)".to_string();
            return Ok((k, s, env("AWS_SESSION_TOKEN"), source));
        }
    }
    let profile = &p.name;
    // A profile that says to assume a role or run something means other
    // keys than its static ones, if it has any: the AWS CLI would use
    // those, so using these instead would act as someone else.
    if let Some(setting) = UNSUPPORTED.iter().find(|s| p.setting(s).is_some()) {
        return Err(configure(
            url,
            format!(
                "profile {profile:?} gets its keys through {setting}, which wormlog does \
                 not run; export them first: eval \"$(aws configure export-credentials \
                 --profile {profile} --format env)\""
            ),
        ));
    }
    match (
        p.setting("aws_access_key_id"),
        p.setting("aws_secret_access_key"),
    ) {
        (Some(key), Some(secret)) => Ok((
            key,
            secret,
            p.setting("aws_session_token"),
            format!("profile {profile:?}"),
        )),
        _ => Err(configure(
            url,
            format!(
                "no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or give \
                 profile {profile:?} aws_access_key_id and aws_secret_access_key in {}{}",
                shown(&p.creds_path),
                p.unreadable_note()
            ),
        )),
    }
}

fn shown(p: &Option<PathBuf>) -> String {
    match p {
        Some(p) => p.display().to_string(),
        None => "~/.aws (HOME is not set)".into(),
    }
}

/// [`resolve`] from this process's environment and files.
pub(crate) fn from_process(url: &str, over: &S3Overrides) -> Result<Resolved> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let read = |p: &Path| match std::fs::read_to_string(p) {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("read", p, e)),
    };
    resolve(url, over, &env, &read)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const CONFIG: &str = "\
[default]
region = eu-west-1

[profile archive]
region = eu-central-1
endpoint_url = http://127.0.0.1:9000
s3 =
  addressing_style = path

[profile sso]
sso_session = corp

[profile role]
role_arn = arn:aws:iam::1:role/x
aws_access_key_id = ROLEKEY
aws_secret_access_key = rolesecret

[profile prod] ; production
region = eu-north-1

[profile bad-region]
region = evil.example#
";
    const CREDS: &str = "\
# comment
[default]
aws_access_key_id = DEFAULTKEY
aws_secret_access_key = defaultsecret

[archive]
aws_access_key_id=ARCHIVEKEY
aws_secret_access_key=archivesecret
aws_session_token = archivetoken

[prod] # production keys
aws_access_key_id = PRODKEY
aws_secret_access_key = prodsecret

[bad-region]
aws_access_key_id = K
aws_secret_access_key = S
";

    fn run(vars: &[(&str, &str)], over: S3Overrides) -> Result<Resolved> {
        let env: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let files: HashMap<PathBuf, &str> = [
            (PathBuf::from("/home/u/.aws/config"), CONFIG),
            (PathBuf::from("/home/u/.aws/credentials"), CREDS),
        ]
        .into_iter()
        .collect();
        resolve("s3://b/p", &over, &|k| env.get(k).cloned(), &|p| {
            Ok(files.get(p).map(|t| t.to_string()))
        })
    }

    const HOME: (&str, &str) = ("HOME", "/home/u");

    #[test]
    fn the_default_profile_gives_keys_region_and_the_regional_endpoint() {
        let r = run(&[HOME], S3Overrides::default()).unwrap();
        assert_eq!(
            (r.key.as_str(), r.secret.as_str()),
            ("DEFAULTKEY", "defaultsecret")
        );
        assert_eq!(r.region, "eu-west-1");
        assert_eq!(r.endpoint, "https://s3.eu-west-1.amazonaws.com");
        assert_eq!(r.token, None);
    }

    #[test]
    fn a_named_profile_reads_its_config_section_and_its_credentials_section() {
        let r = run(&[HOME, ("AWS_PROFILE", "archive")], S3Overrides::default()).unwrap();
        assert_eq!(r.key, "ARCHIVEKEY");
        assert_eq!(r.token.as_deref(), Some("archivetoken"));
        assert_eq!(r.region, "eu-central-1");
        assert_eq!(r.endpoint, "http://127.0.0.1:9000");
    }

    #[test]
    fn environment_keys_win_over_the_profile_but_not_over_an_explicit_one() {
        let vars = [
            HOME,
            ("AWS_ACCESS_KEY_ID", "ENVKEY"),
            ("AWS_SECRET_ACCESS_KEY", "envsecret"),
            ("AWS_REGION", "ap-south-1"),
            ("AWS_ENDPOINT_URL", "http://env:1"),
        ];
        let r = run(&vars, S3Overrides::default()).unwrap();
        assert_eq!(
            (r.key.as_str(), r.region.as_str()),
            ("ENVKEY", "ap-south-1")
        );
        assert_eq!(r.endpoint, "http://env:1");
        let explicit = S3Overrides {
            profile: Some("archive".into()),
            endpoint: Some("http://flag:2".into()),
            region: Some("us-west-2".into()),
        };
        let r = run(&vars, explicit).unwrap();
        assert_eq!(r.key, "ARCHIVEKEY");
        assert_eq!(
            (r.endpoint.as_str(), r.region.as_str()),
            ("http://flag:2", "us-west-2")
        );
    }

    #[test]
    fn a_missing_profile_and_a_profile_that_runs_programs_are_refused_by_name() {
        let e = run(&[HOME, ("AWS_PROFILE", "nope")], S3Overrides::default()).unwrap_err();
        assert!(e.to_string().contains("\"nope\" is in neither"), "{e}");
        let e = run(&[HOME, ("AWS_PROFILE", "sso")], S3Overrides::default()).unwrap_err();
        assert!(
            e.to_string().contains("sso_session") && e.to_string().contains("export-credentials"),
            "{e}"
        );
        let e = run(&[], S3Overrides::default()).unwrap_err();
        assert!(e.to_string().contains("no credentials"), "{e}");
    }

    #[test]
    fn a_header_with_a_comment_is_a_header_and_its_keys_stay_in_it() {
        let r = run(&[HOME, ("AWS_PROFILE", "prod")], S3Overrides::default()).unwrap();
        assert_eq!(
            (r.key.as_str(), r.region.as_str()),
            ("PRODKEY", "eu-north-1")
        );
        // ...and the default profile is not given prod's keys.
        let r = run(&[HOME], S3Overrides::default()).unwrap();
        assert_eq!(r.key, "DEFAULTKEY");
    }

    #[test]
    fn a_role_profile_is_refused_even_with_static_keys_and_a_bad_region_too() {
        let e = run(&[HOME, ("AWS_PROFILE", "role")], S3Overrides::default()).unwrap_err();
        assert!(e.to_string().contains("role_arn"), "{e}");
        let e = run(
            &[HOME, ("AWS_PROFILE", "bad-region")],
            S3Overrides::default(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("not a region name"), "{e}");
    }

    /// `resolve` with these variables and every file unreadable.
    fn unreadable_files(vars: &[(&str, &str)]) -> Result<Resolved> {
        resolve(
            "s3://b/p",
            &S3Overrides::default(),
            &|k| {
                vars.iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            },
            &|p| {
                Err(Error::io(
                    "read",
                    p,
                    std::io::ErrorKind::PermissionDenied.into(),
                ))
            },
        )
    }

    #[test]
    fn an_unreadable_config_file_does_not_stop_environment_keys() {
        let keys = [
            HOME,
            ("AWS_ACCESS_KEY_ID", "ENVKEY"),
            ("AWS_SECRET_ACCESS_KEY", "envsecret"),
        ];
        assert_eq!(unreadable_files(&keys).unwrap().key, "ENVKEY");
        let e = unreadable_files(&[HOME]).unwrap_err();
        assert!(e.to_string().contains("unreadable"), "{e}");
        // A file its variable names is required, keys or not.
        let named = [
            keys[0],
            keys[1],
            keys[2],
            ("AWS_CONFIG_FILE", "/etc/aws.conf"),
        ];
        let e = unreadable_files(&named).unwrap_err();
        assert!(e.to_string().contains("AWS_CONFIG_FILE"), "{e}");
    }

    #[test]
    fn the_debug_form_never_shows_the_keys() {
        let r = run(&[HOME], S3Overrides::default()).unwrap();
        let shown = format!("{r:?}");
        assert!(
            !shown.contains("DEFAULTKEY") && !shown.contains("defaultsecret"),
            "{shown}"
        );
    }
}
