//! The directory index behind `find_people` and `find_chats`: built on first use by walking
//! the app's contact range and the bot's (and the signed-in person's) chats, refreshed in
//! the background, optionally kept in the cache directory so the next process starts warm.
//!
//! A first build is published as it goes, so a call that cannot wait for all of it still
//! answers from what is indexed so far (and says so). A refresh builds aside and swaps.

pub mod index;
pub mod keys;
mod walk;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::{StreamExt, stream};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub use index::{ChatRec, DeptRec, Index, PersonRec};
pub use walk::searched_person;

use crate::lark::{ErrorKind, LarkClient, LarkError};

/// Department listings in flight at once during a build (Lark paces them further).
const WALK_AT_ONCE: usize = 4;
/// A first build is shown to callers at least this often.
const PUBLISH_EVERY: Duration = Duration::from_millis(500);
/// After a failed refresh that kept the old index, try again this soon.
const RETRY_AFTER: Duration = Duration::from_secs(60);
const CACHE_VERSION: u32 = 1;

#[derive(Debug, Clone)]
pub struct DirectoryConfig {
    /// How old the index may get before a background rebuild.
    pub ttl: Duration,
    /// Keep the index in the XDG cache directory (0600) between runs.
    pub persist: bool,
    /// Stop indexing people beyond this many (memory bound).
    pub max_people: usize,
}

impl Default for DirectoryConfig {
    fn default() -> Self {
        DirectoryConfig {
            ttl: Duration::from_secs(3600),
            persist: false,
            max_people: 200_000,
        }
    }
}

/// How far a build has come.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    pub departments_done: usize,
    pub departments_total: usize,
    pub people: usize,
    pub complete: bool,
}

/// What a search sees: the index and what is known about its freshness.
#[derive(Clone)]
pub struct Snapshot {
    pub index: Arc<Index>,
    pub progress: Progress,
    /// Why the last build failed, when it did (the index is then empty or older).
    pub error: Option<String>,
    /// Indexing stopped at the people cap.
    pub truncated: bool,
}

struct State {
    snapshot: Snapshot,
    built_at: Option<SystemTime>,
    building: bool,
    started: bool,
}

pub struct Directory {
    config: DirectoryConfig,
    state: RwLock<State>,
    /// Ticks whenever the snapshot changes: waiters watch it.
    changed: watch::Sender<Progress>,
    cache_key: Mutex<Option<PathBuf>>,
}

#[derive(Serialize, Deserialize)]
struct CacheFile {
    version: u32,
    app_id: String,
    base_url: String,
    built_at_unix: u64,
    truncated: bool,
    people: Vec<PersonRec>,
    depts: Vec<DeptRec>,
    chats: Vec<ChatRec>,
}

impl Directory {
    pub fn new(config: DirectoryConfig) -> Directory {
        Directory {
            config,
            state: RwLock::new(State {
                snapshot: Snapshot {
                    index: Arc::new(Index::default()),
                    progress: Progress::default(),
                    error: None,
                    truncated: false,
                },
                built_at: None,
                building: false,
                started: false,
            }),
            changed: watch::channel(Progress::default()).0,
            cache_key: Mutex::new(None),
        }
    }

    pub fn snapshot(&self) -> Snapshot {
        match self.state.read() {
            Ok(s) => s.snapshot.clone(),
            Err(poisoned) => poisoned.into_inner().snapshot.clone(),
        }
    }

    fn with_state<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        match self.state.write() {
            Ok(mut s) => f(&mut s),
            Err(poisoned) => f(&mut poisoned.into_inner()),
        }
    }

    fn publish(
        &self,
        index: Arc<Index>,
        progress: Progress,
        error: Option<String>,
        truncated: bool,
    ) {
        self.with_state(|s| {
            s.snapshot = Snapshot {
                index,
                progress,
                error,
                truncated,
            };
            if progress.complete {
                s.built_at = Some(SystemTime::now());
            }
        });
        self.changed.send_replace(progress);
    }

    /// Starts the index on first use (from the cache file when there is a fresh enough
    /// one) and the background refresh that keeps it. Later calls do nothing.
    pub fn ensure_started(self: &Arc<Self>, client: &LarkClient) {
        let first = self.with_state(|s| !std::mem::replace(&mut s.started, true));
        if !first {
            return;
        }
        let loaded_at = self.load_cache(client);
        let me = self.clone();
        let client = client.clone();
        tokio::spawn(async move {
            let mut due = match loaded_at {
                Some(t) => me
                    .config
                    .ttl
                    .saturating_sub(t.elapsed().unwrap_or_default()),
                None => Duration::ZERO,
            };
            loop {
                tokio::time::sleep(due).await;
                let ok = me.build(&client).await;
                due = if ok {
                    me.config.ttl
                } else {
                    RETRY_AFTER.min(me.config.ttl)
                };
            }
        });
    }

    /// Waits up to `bound` for a first build to finish, calling `tick` with its progress
    /// now and then; returns what there is by then.
    pub async fn wait_ready<F, Fut>(
        &self,
        bound: Duration,
        cancel: &CancellationToken,
        mut tick: F,
    ) -> Snapshot
    where
        F: FnMut(Progress) -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        let mut rx = self.changed.subscribe();
        let deadline = tokio::time::Instant::now() + bound;
        loop {
            let snap = self.snapshot();
            if snap.progress.complete || snap.error.is_some() {
                return snap;
            }
            tick(snap.progress).await;
            tokio::select! {
                _ = cancel.cancelled() => return self.snapshot(),
                _ = tokio::time::sleep_until(deadline) => return self.snapshot(),
                r = rx.changed() => if r.is_err() { return self.snapshot() },
            }
        }
    }

    /// One full walk. A first build is published as it goes; a refresh replaces the old
    /// index only when it completes. Returns whether it completed.
    async fn build(&self, client: &LarkClient) -> bool {
        let first = self.with_state(|s| {
            s.building = true;
            !s.snapshot.progress.complete
        });
        let cancel = CancellationToken::new();
        let before = self.snapshot().index;
        let outcome = self.walk(client, &cancel, first, &before).await;
        self.with_state(|s| s.building = false);
        match outcome {
            Ok((index, progress, truncated)) => {
                tracing::info!(
                    people = index.people_len(),
                    departments = index.depts.len(),
                    chats = index.chats.len(),
                    "directory indexed"
                );
                let index = Arc::new(index);
                self.publish(index.clone(), progress, None, truncated);
                self.save_cache(client, &index, truncated);
                true
            }
            Err(e) if gone_for_good(&e) => {
                // What the app may no longer see must not be served from memory or disk.
                tracing::warn!("directory dropped: {e}");
                self.publish(
                    Arc::new(Index::default()),
                    Progress {
                        complete: true,
                        ..Progress::default()
                    },
                    Some(e.to_string()),
                    false,
                );
                self.drop_cache();
                false
            }
            Err(e) => {
                tracing::warn!("directory refresh failed; keeping what was indexed: {e}");
                let mut snap = self.snapshot();
                snap.error = (!snap.progress.complete).then(|| e.to_string());
                if !snap.progress.complete {
                    snap.progress.complete = true;
                }
                self.publish(snap.index, snap.progress, snap.error, snap.truncated);
                false
            }
        }
    }

    async fn walk(
        &self,
        client: &LarkClient,
        cancel: &CancellationToken,
        publish_partial: bool,
        before: &Index,
    ) -> Result<(Index, Progress, bool), LarkError> {
        let w = walk::Walk { client, cancel };
        let range = w.range().await?;
        let mut index = Index::default();
        let all_members = range.departments.iter().any(|d| d == "0");
        // The range's own departments (unless it is everyone), then everything below them.
        let tops: Vec<String> = range
            .departments
            .iter()
            .filter(|d| *d != "0")
            .cloned()
            .collect();
        for d in w.departments(&tops).await? {
            index.add_dept(d);
        }
        let roots: Vec<String> = if all_members {
            vec!["0".into()]
        } else {
            tops.clone()
        };
        for root in &roots {
            for d in w.below(root).await? {
                index.add_dept(d);
            }
        }
        let mut to_list: Vec<String> = index.depts.iter().map(|d| d.id.clone()).collect();
        if all_members {
            to_list.insert(0, "0".into());
        }
        let mut progress = Progress {
            departments_total: to_list.len(),
            ..Progress::default()
        };
        let mut truncated = false;
        let mut last_publish = tokio::time::Instant::now();
        let w = &w;
        let mut listings = stream::iter(to_list)
            .map(|d| async move {
                let got = w.members(&d).await;
                (d, got)
            })
            .buffer_unordered(WALK_AT_ONCE);
        while let Some((dept, got)) = listings.next().await {
            match got {
                Ok(people) => {
                    for p in people {
                        if index.people_len() >= self.config.max_people {
                            truncated = true;
                            break;
                        }
                        index.add_person(p);
                    }
                }
                // One department out of reach (its range changed mid-walk) is skipped.
                Err(e) if e.kind == ErrorKind::DataRange || e.kind == ErrorKind::NotFound => {
                    tracing::debug!(department = %dept, "skipped: {e}");
                }
                Err(e) => return Err(e),
            }
            progress.departments_done += 1;
            progress.people = index.people_len();
            if publish_partial && last_publish.elapsed() >= PUBLISH_EVERY {
                last_publish = tokio::time::Instant::now();
                self.publish(Arc::new(index.clone()), progress, None, truncated);
            }
        }
        drop(listings);
        let singles: Vec<String> = range
            .users
            .iter()
            .filter(|u| index.person(u).is_none())
            .cloned()
            .collect();
        for p in w.people(&singles).await? {
            index.add_person(p);
        }
        self.keep_the_resigned(w, before, &mut index).await;
        for c in w.chats(false).await? {
            index.add_chat(c);
        }
        if client
            .user_session()
            .is_some_and(|u| u.granted_scopes().is_some())
        {
            match w.chats(true).await {
                Ok(chats) => chats.into_iter().for_each(|c| index.add_chat(c)),
                Err(e) => tracing::debug!("the signed-in person's chats are not indexed: {e}"),
            }
        }
        index.shrink();
        progress.people = index.people_len();
        progress.complete = true;
        Ok((index, progress, truncated))
    }

    /// Lark lists only current members, so someone who resigns drops out of the walk: of
    /// the people the last index had and this walk did not list, those Lark reports as
    /// resigned are kept, marked so (for `include_resigned`); anyone else is out of view.
    async fn keep_the_resigned(&self, w: &walk::Walk<'_>, before: &Index, index: &mut Index) {
        let missing: Vec<String> = before
            .open_ids()
            .filter(|id| index.person(id).is_none())
            .map(String::from)
            .collect();
        for chunk in missing.chunks(50) {
            match w.people(chunk).await {
                Ok(people) => people
                    .into_iter()
                    .filter(|p| p.status == "resigned")
                    .for_each(|p| index.add_person(p)),
                Err(e) => tracing::debug!("people who left the walk are dropped: {e}"),
            }
        }
    }

    fn cache_path(&self, client: &LarkClient) -> Option<PathBuf> {
        if !self.config.persist {
            return None;
        }
        let mut key = self.cache_key.lock().ok()?;
        if key.is_none() {
            let cfg = client.config();
            let base = cache_dir()?;
            // One file per app and Lark host; the name shows no credential.
            use sha2::Digest;
            let digest = sha2::Sha256::digest(format!("{}|{}", cfg.app_id, cfg.base_url));
            let short: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
            *key = Some(base.join(format!("directory-{short}.json")));
        }
        key.clone()
    }

    /// Returns when the loaded index was built.
    fn load_cache(&self, client: &LarkClient) -> Option<SystemTime> {
        let path = self.cache_path(client)?;
        let bytes = std::fs::read(&path).ok()?;
        let file: CacheFile = match serde_json::from_slice(&bytes) {
            Ok(f) => f,
            Err(e) => {
                tracing::debug!("ignoring the directory cache {}: {e}", path.display());
                return None;
            }
        };
        let cfg = client.config();
        if file.version != CACHE_VERSION
            || file.app_id != cfg.app_id
            || file.base_url != cfg.base_url
        {
            return None;
        }
        let mut index = Index::default();
        file.depts.into_iter().for_each(|d| index.add_dept(d));
        file.people.into_iter().for_each(|p| index.add_person(p));
        file.chats.into_iter().for_each(|c| index.add_chat(c));
        index.shrink();
        let built = UNIX_EPOCH + Duration::from_secs(file.built_at_unix);
        let progress = Progress {
            departments_done: index.depts.len(),
            departments_total: index.depts.len(),
            people: index.people_len(),
            complete: true,
        };
        tracing::info!(
            people = progress.people,
            "directory loaded from {}",
            path.display()
        );
        self.publish(Arc::new(index), progress, None, file.truncated);
        self.with_state(|s| s.built_at = Some(built));
        Some(built)
    }

    fn save_cache(&self, client: &LarkClient, index: &Index, truncated: bool) {
        let Some(path) = self.cache_path(client) else {
            return;
        };
        let cfg = client.config();
        let file = CacheFile {
            version: CACHE_VERSION,
            app_id: cfg.app_id.clone(),
            base_url: cfg.base_url.clone(),
            built_at_unix: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            truncated,
            people: index.people_recs(),
            depts: index.depts.clone(),
            chats: index.chats.clone(),
        };
        let written = serde_json::to_vec(&file)
            .map_err(|e| e.to_string())
            .and_then(|b| crate::profile::write_private(&path, &b));
        if let Err(e) = written {
            tracing::warn!("the directory cache was not written: {e}");
        }
    }

    /// The app lost the scopes the directory is read with: forget it, in memory and on
    /// disk, without waiting for a refresh that a hidden tool would never ask for.
    pub fn forget(&self, why: &str) {
        self.publish(
            Arc::new(Index::default()),
            Progress {
                complete: true,
                ..Progress::default()
            },
            Some(why.to_string()),
            false,
        );
        self.drop_cache();
    }

    fn drop_cache(&self) {
        let path = self.cache_key.lock().ok().and_then(|k| k.clone());
        if let Some(p) = path {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// The app may no longer read the directory: forget it rather than keep serving it.
fn gone_for_good(e: &LarkError) -> bool {
    matches!(
        e.kind,
        ErrorKind::MissingScope | ErrorKind::DataRange | ErrorKind::Auth | ErrorKind::Config
    )
}

/// `<cache>/lark-mcp-server`: `XDG_CACHE_HOME`, else `~/.cache`.
pub(crate) fn cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".cache"))
        })?;
    Some(base.join("lark-mcp-server"))
}
