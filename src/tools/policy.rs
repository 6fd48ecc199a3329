//! Which tools are exposed: the operator's filters, fixed at start, then the app's scopes.
//!
//! Order: toolsets (default all) → `tools` adds single tools → `exclude` removes (always
//! wins) → read-only hides every write (always wins) → scope gating.

use std::collections::BTreeSet;

use serde::Serialize;

use super::{Needs, ToolDef, ToolMeta, Toolset, catalog};
use crate::lark::GrantedScopes;

#[derive(Debug, Clone, Default)]
pub struct PolicyConfig {
    /// None: every toolset.
    pub toolsets: Option<Vec<String>>,
    pub tools: Vec<String>,
    pub exclude: Vec<String>,
    pub read_only: bool,
    /// Directories local files may be read from (uploads); none by default.
    pub allow_read_dirs: Vec<std::path::PathBuf>,
    /// Where downloads are written; downloads are off without it.
    pub download_dir: Option<std::path::PathBuf>,
}

/// Why a tool is not exposed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Hidden {
    /// Its toolset was not selected and it was not added with `--tools`.
    ToolsetNotSelected { toolset: &'static str },
    /// Removed with `--exclude-tools`.
    Excluded,
    /// It writes, and the server runs with `--read-only`.
    ReadOnly,
    /// It needs operator configuration that was not given.
    NotConfigured { flag: &'static str },
    /// The app has none of the scopes it needs.
    MissingScope { any_of: Vec<String> },
    /// It acts as the signed-in user, and nobody is signed in.
    NeedsLogin,
    /// It acts as the signed-in user, and the operator allows only the bot (`--identity bot`).
    BotOnly,
    /// It acts as the signed-in user, who has not granted any of these scopes.
    MissingUserScope { any_of: Vec<String> },
    /// It would speak in the signed-in user's name, and `--allow-send-as-user` is off.
    SendAsUserOff,
}

impl Hidden {
    /// What an agent or operator reads when a hidden tool is called or listed in `check`.
    pub fn explain(&self, cfg: &crate::lark::LarkConfig) -> String {
        match self {
            Hidden::ToolsetNotSelected { toolset } => format!(
                "the server was started without the `{toolset}` toolset (--toolsets / LARK_MCP_TOOLSETS)"
            ),
            Hidden::Excluded => {
                "the operator excluded it (--exclude-tools / LARK_MCP_EXCLUDE_TOOLS)".into()
            }
            Hidden::ReadOnly => {
                "the server runs read-only and this tool writes (--read-only / LARK_MCP_READ_ONLY)"
                    .into()
            }
            Hidden::NotConfigured { flag } => {
                format!("it needs the operator to start the server with {flag}")
            }
            Hidden::MissingUserScope { any_of } => format!(
                "it acts as you, and your login has none of [{}]: run `lark-mcp-server login` again (the app must offer one of them for user identity)",
                any_of.join(", ")
            ),
            Hidden::SendAsUserOff => "it would send in your name, which the server allows only with --allow-send-as-user (LARK_MCP_ALLOW_SEND_AS_USER)".into(),
            Hidden::BotOnly => "it acts as the signed-in user, and the server runs as the bot only (--identity bot / LARK_MCP_IDENTITY)".into(),
            Hidden::NeedsLogin => "it acts as you, and nobody is signed in: run `lark-mcp-server login` (the server notices within its scope re-read interval)".into(),
            Hidden::MissingScope { any_of } => format!(
                "the Lark app has not been granted any of [{}]; an app admin can enable one at {} and publish a new version",
                any_of.join(", "),
                console_link(cfg, any_of)
            ),
        }
    }
}

pub fn console_link(cfg: &crate::lark::LarkConfig, scopes: &[String]) -> String {
    format!(
        "{}/app/{}/auth?q={}&op_from=openapi",
        cfg.console_base(),
        cfg.app_id,
        scopes.join(",")
    )
}

/// An unknown name: a typo gets the one name it most likely meant, anything else the full
/// list, since a list of 38 hides the one that was meant.
fn unknown(what: &str, name: &str, flag: &str, valid: &[&str]) -> String {
    match closest(name, valid) {
        Some(near) => format!("unknown {what} `{name}` in {flag}; did you mean `{near}`?"),
        None => format!(
            "unknown {what} `{name}` in {flag}; valid {what}s: {}",
            valid.join(", ")
        ),
    }
}

/// The nearest valid name, if it is close enough to be a slip rather than another word:
/// about one edit (a swapped pair counts as one) per three characters.
fn closest<'a>(name: &str, valid: &[&'a str]) -> Option<&'a str> {
    let name = name.to_ascii_lowercase();
    let allowed = (name.chars().count() / 3).max(1);
    valid
        .iter()
        .map(|v| (strsim::damerau_levenshtein(&name, v), *v))
        .filter(|(d, _)| *d <= allowed)
        .min_by_key(|(d, _)| *d)
        .map(|(_, v)| v)
}

#[derive(Debug, Clone)]
pub struct Policy {
    toolsets: BTreeSet<Toolset>,
    tools: BTreeSet<String>,
    exclude: BTreeSet<String>,
    read_only: bool,
    allow_read_dirs: Vec<std::path::PathBuf>,
    download_dir: Option<std::path::PathBuf>,
}

impl Policy {
    /// Validates every name; an unknown one is an error listing the valid names.
    pub fn new(cfg: &PolicyConfig) -> Result<Policy, String> {
        let toolsets = match &cfg.toolsets {
            None => Toolset::DEFAULT.iter().copied().collect(),
            Some(names) => {
                let mut set = BTreeSet::new();
                for n in names.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
                    if n == "all" {
                        set.extend(Toolset::ALL.iter().copied());
                        continue;
                    }
                    let t = Toolset::parse(n).ok_or_else(|| {
                        let mut valid = vec!["all"];
                        valid.extend(Toolset::ALL.iter().map(|t| t.as_str()));
                        unknown("toolset", n, "--toolsets", &valid)
                    })?;
                    set.insert(t);
                }
                set
            }
        };
        let check = |names: &[String], flag: &str| -> Result<BTreeSet<String>, String> {
            let mut out = BTreeSet::new();
            for n in names.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
                if super::find(n).is_none() {
                    let valid: Vec<&str> = catalog().iter().map(|t| t.meta.name).collect();
                    return Err(unknown("tool", n, flag, &valid));
                }
                out.insert(n.to_string());
            }
            Ok(out)
        };
        Ok(Policy {
            toolsets,
            tools: check(&cfg.tools, "--tools")?,
            exclude: check(&cfg.exclude, "--exclude-tools")?,
            read_only: cfg.read_only,
            allow_read_dirs: cfg.allow_read_dirs.clone(),
            download_dir: cfg.download_dir.clone(),
        })
    }

    pub fn read_only(&self) -> bool {
        self.read_only
    }

    pub fn allow_read_dirs(&self) -> &[std::path::PathBuf] {
        &self.allow_read_dirs
    }

    pub fn download_dir(&self) -> Option<&std::path::Path> {
        self.download_dir.as_deref()
    }

    /// Whether a toolset was chosen (or one of its tools by name).
    pub fn wants(&self, t: Toolset) -> bool {
        self.toolsets.contains(&t)
            || catalog()
                .iter()
                .any(|d| d.meta.toolset == t && self.tools.contains(d.meta.name))
    }

    /// The operator's decision alone (no scopes).
    pub fn configured(&self, m: &ToolMeta) -> Result<(), Hidden> {
        if !self.toolsets.contains(&m.toolset) && !self.tools.contains(m.name) {
            return Err(Hidden::ToolsetNotSelected {
                toolset: m.toolset.as_str(),
            });
        }
        if self.exclude.contains(m.name) {
            return Err(Hidden::Excluded);
        }
        if self.read_only && !m.read_only {
            return Err(Hidden::ReadOnly);
        }
        match m.needs {
            Needs::ReadDir if self.allow_read_dirs.is_empty() => Err(Hidden::NotConfigured {
                flag: "--allow-read-dir (LARK_MCP_ALLOW_READ_DIRS)",
            }),
            Needs::DownloadDir if self.download_dir.is_none() => Err(Hidden::NotConfigured {
                flag: "--download-dir (LARK_MCP_DOWNLOAD_DIR)",
            }),
            _ => Ok(()),
        }
    }

    /// The full decision. `scopes` None means they are unknown (not read, or unreadable):
    /// the tool is then exposed, and Lark's own answer will say what is missing.
    pub fn visibility(&self, def: &ToolDef, scopes: Option<&GrantedScopes>) -> Result<(), Hidden> {
        self.configured(&def.meta)?;
        match scopes {
            Some(granted) if !granted.allows_any(def.meta.scopes) => Err(Hidden::MissingScope {
                any_of: def.meta.scopes.iter().map(|s| s.to_string()).collect(),
            }),
            _ => Ok(()),
        }
    }

    /// Names of the visible tools, sorted.
    pub fn visible_names(&self, scopes: Option<&GrantedScopes>) -> Vec<&'static str> {
        catalog()
            .iter()
            .filter(|d| self.visibility(d, scopes).is_ok())
            .map(|d| d.meta.name)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> PolicyConfig {
        PolicyConfig::default()
    }

    #[test]
    fn unknown_names_list_the_valid_ones() {
        let e = Policy::new(&PolicyConfig {
            toolsets: Some(vec!["nope".into()]),
            ..cfg()
        })
        .unwrap_err();
        assert!(
            e.contains("unknown toolset `nope`") && e.contains("contact"),
            "{e}"
        );
        let e = Policy::new(&PolicyConfig {
            exclude: vec!["get_usr".into()],
            ..cfg()
        })
        .unwrap_err();
        assert!(
            e.contains("unknown tool `get_usr`") && e.contains("get_user"),
            "{e}"
        );
    }

    #[test]
    fn a_near_miss_gets_the_name_it_meant() {
        let e = Policy::new(&PolicyConfig {
            tools: vec!["send_mesage".into()],
            ..cfg()
        })
        .unwrap_err();
        assert_eq!(
            e,
            "unknown tool `send_mesage` in --tools; did you mean `send_message`?"
        );
        let e = Policy::new(&PolicyConfig {
            toolsets: Some(vec!["mesages".into()]),
            ..cfg()
        })
        .unwrap_err();
        assert!(e.contains("did you mean `messages`?"), "{e}");
        let e = Policy::new(&PolicyConfig {
            exclude: vec!["Get_User".into()],
            ..cfg()
        })
        .unwrap_err();
        assert!(e.contains("did you mean `get_user`?"), "{e}");
        // Far from everything: no guess, the list.
        let e = Policy::new(&PolicyConfig {
            tools: vec!["frobnicate".into()],
            ..cfg()
        })
        .unwrap_err();
        assert!(
            !e.contains("did you mean") && e.contains("send_message"),
            "{e}"
        );
    }

    #[test]
    fn exclude_and_read_only_win_over_additions() {
        let p = Policy::new(&PolicyConfig {
            toolsets: Some(vec!["meta".into()]),
            tools: vec!["get_user".into(), "get_users".into()],
            exclude: vec!["get_users".into()],
            ..cfg()
        })
        .unwrap();
        let names = p.visible_names(None);
        assert!(names.contains(&"get_user") && names.contains(&"get_app_status"));
        assert!(!names.contains(&"get_users") && !names.contains(&"lookup_user_by_email"));
    }

    #[test]
    fn a_tool_without_its_scope_is_hidden_with_the_scope_named() {
        let p = Policy::new(&cfg()).unwrap();
        let def = super::super::find("lookup_user_by_email").unwrap();
        let none = GrantedScopes::default();
        match p.visibility(def, Some(&none)) {
            Err(Hidden::MissingScope { any_of }) => {
                assert_eq!(any_of, vec!["contact:user.id:readonly"])
            }
            other => panic!("{other:?}"),
        }
        assert!(
            p.visibility(def, None).is_ok(),
            "unknown scopes expose the tool"
        );
    }

    #[test]
    fn the_console_link_follows_the_domain() {
        let hidden = Hidden::MissingScope {
            any_of: vec!["contact:user.id:readonly".into()],
        };
        let cfg = |domain: &str| {
            crate::lark::LarkConfig::new(Some("cli_a1"), Some("s"), Some(domain)).unwrap()
        };
        let lark = hidden.explain(&cfg("lark"));
        assert!(
            lark.contains("https://open.larksuite.com/app/cli_a1/auth?q=contact:user.id:readonly"),
            "{lark}"
        );
        let feishu = hidden.explain(&cfg("feishu"));
        assert!(
            feishu.contains("https://open.feishu.cn/app/cli_a1/auth"),
            "{feishu}"
        );
    }
}
