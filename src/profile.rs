//! Stored app credentials, by profile name: what `init` writes and `serve`, `check` and
//! `call` read when no flag or environment variable gives credentials.
//!
//! The app id, API base and brand go to `<config>/lark-mcp-server/profiles/<name>.json`
//! (`$XDG_CONFIG_HOME`, else `~/.config`; `%APPDATA%` on Windows). The secret goes to the
//! OS keychain (macOS Keychain, Windows Credential Manager, the Secret Service on Linux)
//! when one answers; otherwise into that file. The directory is 0700 and the file 0600,
//! written whole or not at all (temp file, then rename). `LARK_MCP_KEYCHAIN=off` skips the
//! keychain (headless machines, tests). The user's tokens from `login` follow the same
//! choice ([`user_tokens_path`], [`user_tokens_account`]; `crate::lark::user_auth`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::lark::registration::Brand;

pub const DEFAULT: &str = "default";
/// The keychain service of every entry this program keeps.
pub const KEYCHAIN_SERVICE: &str = "lark-mcp-server";
/// A keychain that asks the user to unlock it may take this long; then the file is used.
const KEYCHAIN_WAIT: Duration = Duration::from_secs(30);

pub struct Profile {
    pub name: String,
    pub app_id: String,
    pub app_secret: SecretString,
    /// The API base, e.g. `https://open.feishu.cn`.
    pub domain: String,
    pub brand: Brand,
}

impl std::fmt::Debug for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Profile")
            .field("name", &self.name)
            .field("app_id", &self.app_id)
            .field("app_secret", &"[redacted]")
            .field("domain", &self.domain)
            .field("brand", &self.brand)
            .finish()
    }
}

/// Where the secret went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretStore {
    Keychain,
    File,
}

#[derive(Serialize, Deserialize)]
struct OnDisk {
    app_id: String,
    domain: String,
    brand: String,
    /// `keychain` or `file`.
    secret_store: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    app_secret: Option<String>,
}

/// A profile name becomes a file name: letters, digits, `-`, `_`, `.` (not leading).
pub fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid profile name `{name}`: use 1–64 letters, digits, -, _ or . (--profile / LARK_MCP_PROFILE)"
        ))
    }
}

/// `<config>/lark-mcp-server`.
pub fn config_dir() -> Result<PathBuf, String> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".config"))
        })
        .or_else(|| std::env::var_os("APPDATA").map(PathBuf::from))
        .ok_or("cannot find a config directory: set XDG_CONFIG_HOME or HOME")?;
    Ok(base.join("lark-mcp-server"))
}

pub fn path(name: &str) -> Result<PathBuf, String> {
    check_name(name)?;
    Ok(config_dir()?.join("profiles").join(format!("{name}.json")))
}

/// Where `login` keeps the user's login for profile `name` (0600, like the profile): all of
/// it, or all but the two tokens when those are in the OS keychain
/// ([`user_tokens_account`]).
pub fn user_tokens_path(name: &str) -> Result<PathBuf, String> {
    check_name(name)?;
    Ok(config_dir()?
        .join("profiles")
        .join(format!("{name}.user.json")))
}

/// The keychain entry (account, under [`KEYCHAIN_SERVICE`]) of the user's tokens for profile
/// `name`; an app secret's entry is `name:app_id`, so the two never meet.
pub fn user_tokens_account(name: &str) -> String {
    format!("{name}.user")
}

/// Whether new secrets should go to the OS keychain (`LARK_MCP_KEYCHAIN=off|0|false`: no).
/// Reading follows what the file says, whatever this answers.
pub fn keychain_wanted() -> bool {
    !std::env::var("LARK_MCP_KEYCHAIN").is_ok_and(|v| matches!(v.as_str(), "off" | "0" | "false"))
}

fn entry_user(name: &str, app_id: &str) -> String {
    format!("{name}:{app_id}")
}

/// Runs one keychain operation off the async threads, bounded.
async fn keychain<T: Send + 'static>(
    op: impl FnOnce() -> Result<T, keyring::Error> + Send + 'static,
) -> Result<T, String> {
    bounded(move || op().map_err(|e| e.to_string())).await
}

/// Runs one blocking keychain operation off the async threads, given `KEYCHAIN_WAIT` (30 s) at
/// most (a keychain that asks the user to unlock it may never answer).
pub async fn bounded<T: Send + 'static>(
    op: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    match tokio::time::timeout(KEYCHAIN_WAIT, tokio::task::spawn_blocking(op)).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => Err(format!("the keychain call failed: {e}")),
        Err(_) => Err("the keychain did not answer in time".into()),
    }
}

/// A store of small secrets by account name: the OS keychain ([`OsKeychain`]), or in tests
/// one that fails or lives in memory. Calls block; run them through [`bounded`]. Errors never
/// hold the secret.
pub trait Keystore: Send + Sync {
    fn set(&self, account: &str, value: &str) -> Result<(), String>;
    /// `None`: no such entry.
    fn get(&self, account: &str) -> Result<Option<String>, String>;
    /// No such entry is not an error.
    fn delete(&self, account: &str) -> Result<(), String>;
}

/// The OS keychain, entries under the service [`KEYCHAIN_SERVICE`].
pub struct OsKeychain;

impl Keystore for OsKeychain {
    fn set(&self, account: &str, value: &str) -> Result<(), String> {
        keyring::Entry::new(KEYCHAIN_SERVICE, account)
            .and_then(|e| e.set_password(value))
            .map_err(|e| e.to_string())
    }

    fn get(&self, account: &str) -> Result<Option<String>, String> {
        match keyring::Entry::new(KEYCHAIN_SERVICE, account).and_then(|e| e.get_password()) {
            Ok(v) => Ok(Some(v)),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }

    fn delete(&self, account: &str) -> Result<(), String> {
        match keyring::Entry::new(KEYCHAIN_SERVICE, account).and_then(|e| e.delete_credential()) {
            Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// Stores `p` (replacing a profile of that name); says where the secret went.
pub async fn save(p: &Profile) -> Result<(PathBuf, SecretStore), String> {
    let file = path(&p.name)?;
    let mut store = SecretStore::File;
    if keychain_wanted() {
        let (user, secret) = (
            entry_user(&p.name, &p.app_id),
            p.app_secret.expose_secret().to_string(),
        );
        match keychain(move || keyring::Entry::new(KEYCHAIN_SERVICE, &user)?.set_password(&secret))
            .await
        {
            Ok(()) => store = SecretStore::Keychain,
            Err(e) => tracing::info!("no keychain ({e}); the secret goes into the profile file"),
        }
    }
    let disk = OnDisk {
        app_id: p.app_id.clone(),
        domain: p.domain.clone(),
        brand: p.brand.as_str().into(),
        secret_store: match store {
            SecretStore::Keychain => "keychain".into(),
            SecretStore::File => "file".into(),
        },
        app_secret: (store == SecretStore::File).then(|| p.app_secret.expose_secret().to_string()),
    };
    let json = serde_json::to_vec_pretty(&disk).map_err(|e| e.to_string())?;
    write_private(&file, &json)?;
    Ok((file, store))
}

/// The profile `name`, if stored.
pub async fn load(name: &str) -> Result<Option<Profile>, String> {
    let file = path(name)?;
    let bytes = match std::fs::read(&file) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", file.display())),
    };
    let disk: OnDisk = serde_json::from_slice(&bytes).map_err(|e| {
        format!(
            "{} is not a profile ({e}); run `lark-mcp-server init --profile {name}` again",
            file.display()
        )
    })?;
    let brand = Brand::parse(&disk.brand).unwrap_or(Brand::Feishu);
    let secret = match (disk.secret_store.as_str(), disk.app_secret) {
        ("file", Some(s)) => s,
        ("keychain", _) => {
            let user = entry_user(name, &disk.app_id);
            keychain(move || keyring::Entry::new(KEYCHAIN_SERVICE, &user)?.get_password())
                .await
                .map_err(|e| {
                    format!(
                        "profile `{name}` keeps its secret in the OS keychain, which did not give it ({e}); run `lark-mcp-server init --profile {name}` again"
                    )
                })?
        }
        _ => {
            return Err(format!(
                "{} holds no secret; run `lark-mcp-server init --profile {name}` again",
                file.display()
            ));
        }
    };
    Ok(Some(Profile {
        name: name.into(),
        app_id: disk.app_id,
        app_secret: SecretString::from(secret),
        domain: disk.domain,
        brand,
    }))
}

/// Writes `bytes` to `file` readable by its owner only, atomically.
pub fn write_private(file: &Path, bytes: &[u8]) -> Result<(), String> {
    use std::io::Write;
    let dir = file
        .parent()
        .ok_or_else(|| format!("{} has no directory", file.display()))?;
    create_private_dir(dir)?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        file.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        std::process::id()
    ));
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let written = opts
        .open(&tmp)
        .and_then(|mut f| f.write_all(bytes).and_then(|()| f.sync_all()))
        .and_then(|()| std::fs::rename(&tmp, file));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(format!("cannot write {}: {e}", file.display()));
    }
    Ok(())
}

/// Creates `dir` and its parents, new ones readable by their owner only.
pub fn create_private_dir(dir: &Path) -> Result<(), String> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder
        .create(dir)
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_file_names() {
        for ok in ["default", "work-2", "a.b_c"] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "../x", ".hidden", "a/b", "a b", &"x".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_debug_form_hides_the_secret() {
        let p = Profile {
            name: "n".into(),
            app_id: "cli_1".into(),
            app_secret: SecretString::from("s3cr3t-value".to_string()),
            domain: "https://open.feishu.cn".into(),
            brand: Brand::Feishu,
        };
        assert!(!format!("{p:?}").contains("s3cr3t"));
    }
}
