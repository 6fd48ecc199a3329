//! The file tools of toolset `messages`: upload local images and files, download a
//! message's resources.
//!
//! The agent chooses the paths, so an upload reads nothing outside the operator's allowed
//! directories and its errors never tell whether a path outside them exists; a download
//! only ever creates new files in the download directory, never writing through an
//! existing name or link. A download streams into a hidden temporary file of its own and
//! gets its final name only once complete, so memory use does not grow with the file and
//! no partial file is left under any name.

use std::fs::File;
use std::io::{Read, Seek};
use std::path::{Component, Path, PathBuf};
use std::sync::LazyLock;

use base64::Engine;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncSeekExt, AsyncWriteExt};

use super::meta;
use crate::lark::scope_sets as scopes;
use crate::lark::{DownloadError, FileSink, FormPart, Method, Request, api_path};
use crate::tools::guard::Write;
use crate::tools::{Media, Needs, ToolCtx, ToolDef, ToolError};

/// Lark's upload limits.
const IMAGE_LIMIT: u64 = 10 * 1024 * 1024;
const FILE_LIMIT: u64 = 30 * 1024 * 1024;
/// Lark's limit for a message resource download.
const DOWNLOAD_LIMIT: u64 = 100 * 1024 * 1024;
/// Images up to this size are also returned as MCP image content.
const INLINE_IMAGE_LIMIT: usize = 1024 * 1024;
/// Saved names stay this short so a ` (n)` suffix still fits the usual 255-byte limit.
const NAME_MAX_BYTES: usize = 200;
/// A longer "extension" is part of the name, not a type to keep.
const EXT_MAX_BYTES: usize = 16;
/// `name (2).ext` … `name (LAST_NUMBERED).ext` before random suffixes take over.
const LAST_NUMBERED: u32 = 99;
const RANDOM_TRIES: u32 = 16;

pub fn tools() -> Vec<ToolDef> {
    vec![
        ToolDef::new(
            meta(
                "upload_image",
                "Upload an image",
                "Upload a local image (from an allowed directory) to get an image_key for send_message.",
                scopes::RESOURCE_UPLOAD,
                false,
                false,
                false,
                Needs::ReadDir,
            ),
            upload_image,
        ),
        ToolDef::new(
            meta(
                "upload_file",
                "Upload a file",
                "Upload a local file (from an allowed directory) to get a file_key for send_message.",
                scopes::RESOURCE_UPLOAD,
                false,
                false,
                false,
                Needs::ReadDir,
            ),
            upload_file,
        ),
        ToolDef::with_media(
            meta(
                "download_resource",
                "Download a message's file",
                "Save an image or file from a message into the download directory; small images are also shown to you.",
                scopes::MESSAGE_HISTORY,
                false,
                false,
                true,
                Needs::DownloadDir,
            ),
            download_resource,
        ),
    ]
}

/// Runs blocking filesystem work off the async workers.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ToolError> + Send + 'static,
) -> Result<T, ToolError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ToolError::msg(format!("internal error: file work failed: {e}")))?
}

// ---- uploads -------------------------------------------------------------------------------

/// A local file read for upload.
struct Local {
    /// Where it really is (symlinks resolved); its name and extension are what Lark sees.
    real: PathBuf,
    /// What the upload calls its type (a MIME type, a Lark file_type).
    kind: &'static str,
    bytes: Vec<u8>,
}

/// Decides an upload's type from the real path's extension, or refuses it.
type Typer = fn(&Path) -> Result<&'static str, ToolError>;

/// The one answer for every path that is, or resolves, outside the allowed directories,
/// existing or not, so an agent cannot probe the host's files with uploads.
fn outside(path: &str, dirs: &[PathBuf]) -> ToolError {
    let list: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
    ToolError::invalid(
        "path",
        format!(
            "{path} is outside the directories this server may read ({}); nothing was uploaded",
            list.join(", ")
        ),
    )
}

fn within(real: &Path, roots: &[PathBuf]) -> bool {
    roots.iter().any(|r| real.starts_with(r))
}

/// Whether resolving `p` failed at something real inside an allowed directory (a missing
/// name, an unreadable directory), so its cause may be told: the deepest ancestor that
/// resolves is inside, and the next name below it is not a link that could lead out.
fn failed_inside(p: &Path, roots: &[PathBuf]) -> bool {
    let mut child = p;
    while let Some(parent) = child.parent() {
        if let Ok(real) = std::fs::canonicalize(parent) {
            let is_link =
                std::fs::symlink_metadata(child).is_ok_and(|m| m.file_type().is_symlink());
            return within(&real, roots) && !is_link;
        }
        child = parent;
    }
    false
}

#[cfg(unix)]
fn open_read(p: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    // O_NONBLOCK: opening a FIFO must not wait for a writer (it is refused right after);
    // O_NOFOLLOW: a link swapped in after resolution is not followed.
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW)
        .open(p)
}

#[cfg(not(unix))]
fn open_read(p: &Path) -> std::io::Result<File> {
    File::open(p)
}

/// Where the opened file really is, from the handle, so a rename or link swapped in
/// between resolving the path and opening it cannot smuggle in another file.
#[cfg(unix)]
fn opened_inside(file: &File, meta: &std::fs::Metadata, real: &Path, roots: &[PathBuf]) -> bool {
    use std::os::unix::fs::MetadataExt;
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        if let Ok(p) = std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd())) {
            return within(&p, roots);
        }
    }
    // Without /proc: the handle must be the very file `real` (checked inside) names.
    let _ = file;
    std::fs::metadata(real).is_ok_and(|m| m.dev() == meta.dev() && m.ino() == meta.ino())
}

#[cfg(not(unix))]
fn opened_inside(_: &File, _: &std::fs::Metadata, _: &Path, _: &[PathBuf]) -> bool {
    true
}

/// Opens `path` once, refusing it unless the opened file is a regular file of 1 byte to
/// `limit` inside an allowed directory of a type `typer` accepts, and reads it from that
/// handle. Blocking.
fn read_allowed(
    path: &str,
    dirs: &[PathBuf],
    limit: u64,
    typer: Typer,
) -> Result<Local, ToolError> {
    let p = Path::new(path);
    if !p.is_absolute() {
        return Err(ToolError::invalid(
            "path",
            format!(
                "{path} is not an absolute path; give the full path of a file in an allowed directory; nothing was uploaded"
            ),
        ));
    }
    if p.components().any(|c| c == Component::ParentDir) {
        return Err(ToolError::invalid(
            "path",
            format!(
                "{path} contains `..`; give the direct path of a file in an allowed directory; nothing was uploaded"
            ),
        ));
    }
    // Operators may name a directory through a link; both spellings count as inside. Only
    // the allowed directories are looked up here: the agent's path is judged on its text.
    let roots: Vec<PathBuf> = dirs
        .iter()
        .filter_map(|d| std::fs::canonicalize(d).ok())
        .collect();
    let spelled: Vec<PathBuf> = dirs
        .iter()
        .filter_map(|d| std::path::absolute(d).ok())
        .chain(roots.iter().cloned())
        .collect();
    if !within(p, &spelled) {
        return Err(outside(path, dirs));
    }
    let cannot = |e: std::io::Error| {
        ToolError::invalid(
            "path",
            format!("cannot open {path}: {e}; nothing was uploaded"),
        )
    };
    let real = match std::fs::canonicalize(p) {
        Ok(real) => real,
        Err(e) if failed_inside(p, &roots) => return Err(cannot(e)),
        Err(_) => return Err(outside(path, dirs)),
    };
    if !within(&real, &roots) {
        return Err(outside(path, dirs));
    }
    let file = match open_read(&real) {
        Ok(f) => f,
        Err(e) if failed_inside(&real, &roots) => return Err(cannot(e)),
        Err(_) => return Err(outside(path, dirs)),
    };
    let meta = file.metadata().map_err(cannot)?;
    if !opened_inside(&file, &meta, &real, &roots) {
        return Err(outside(path, dirs));
    }
    let mb = limit / (1024 * 1024);
    if !meta.is_file() {
        return Err(ToolError::invalid(
            "path",
            format!("{path} is not a regular file; nothing was uploaded"),
        ));
    }
    if meta.len() == 0 || meta.len() > limit {
        return Err(ToolError::invalid(
            "path",
            format!(
                "{path} is {} bytes; Lark accepts 1 byte to {mb} MB here; nothing was uploaded",
                meta.len()
            ),
        ));
    }
    // Refused before reading, so a wrong type costs no read of up to `limit` bytes.
    let kind = typer(&real)?;
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // One byte past the limit tells a file that grew after the size check.
    (&file)
        .take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(cannot)?;
    if bytes.is_empty() || bytes.len() as u64 > limit {
        return Err(ToolError::invalid(
            "path",
            format!(
                "{path} changed size while being read; Lark accepts 1 byte to {mb} MB here; nothing was uploaded"
            ),
        ));
    }
    Ok(Local { real, kind, bytes })
}

async fn read_upload(
    ctx: &ToolCtx,
    path: String,
    limit: u64,
    typer: Typer,
) -> Result<Local, ToolError> {
    let dirs = ctx.shared.policy.allow_read_dirs().to_vec();
    blocking(move || read_allowed(&path, &dirs, limit, typer)).await
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "upload".into())
}

fn extension(p: &Path) -> String {
    p.extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default()
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct UploadArgs {
    /// Absolute path of a local file inside an allowed directory.
    path: String,
}

#[derive(Serialize, JsonSchema)]
struct Uploaded {
    #[serde(skip_serializing_if = "Option::is_none")]
    image_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    file_key: Option<String>,
    bytes: u64,
}

fn image_mime(p: &Path) -> Result<&'static str, ToolError> {
    Ok(match extension(p).as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "bmp" => "image/bmp",
        "ico" => "image/x-icon",
        "tif" | "tiff" => "image/tiff",
        "heic" => "image/heic",
        other => {
            return Err(ToolError::invalid(
                "path",
                format!(
                    "`.{other}` is not an image type Lark accepts (png, jpg, gif, webp, bmp, ico, tiff, heic)"
                ),
            ));
        }
    })
}

async fn upload_image(ctx: ToolCtx, a: UploadArgs) -> Result<Uploaded, ToolError> {
    let local = read_upload(&ctx, a.path, IMAGE_LIMIT, image_mime).await?;
    let size = local.bytes.len() as u64;
    let req = Request::new(
        "upload image",
        Method::POST,
        "/open-apis/im/v1/images".into(),
    )
    .form(vec![
        FormPart::Text {
            name: "image_type".into(),
            value: "message".into(),
        },
        FormPart::File {
            name: "image".into(),
            file_name: file_name(&local.real),
            mime: local.kind.into(),
            bytes: local.bytes.into(),
        },
    ])
    .idempotent();
    let data = ctx
        .write(Write::reaching(Vec::new()), req)
        .await?
        .into_data();
    Ok(Uploaded {
        image_key: data["image_key"].as_str().map(String::from),
        file_key: None,
        bytes: size,
    })
}

/// Lark's `file_type`; anything it has no type for is a `stream`.
fn file_type(p: &Path) -> Result<&'static str, ToolError> {
    Ok(match extension(p).as_str() {
        "opus" => "opus",
        "mp4" => "mp4",
        "pdf" => "pdf",
        "doc" | "docx" => "doc",
        "xls" | "xlsx" => "xls",
        "ppt" | "pptx" => "ppt",
        _ => "stream",
    })
}

async fn upload_file(ctx: ToolCtx, a: UploadArgs) -> Result<Uploaded, ToolError> {
    let local = read_upload(&ctx, a.path, FILE_LIMIT, file_type).await?;
    let size = local.bytes.len() as u64;
    let name = file_name(&local.real);
    let req = Request::new("upload file", Method::POST, "/open-apis/im/v1/files".into())
        .form(vec![
            FormPart::Text {
                name: "file_type".into(),
                value: local.kind.into(),
            },
            FormPart::Text {
                name: "file_name".into(),
                value: name.clone(),
            },
            FormPart::File {
                name: "file".into(),
                file_name: name,
                mime: "application/octet-stream".into(),
                bytes: local.bytes.into(),
            },
        ])
        .idempotent();
    let data = ctx
        .write(Write::reaching(Vec::new()), req)
        .await?
        .into_data();
    Ok(Uploaded {
        image_key: None,
        file_key: data["file_key"].as_str().map(String::from),
        bytes: size,
    })
}

// ---- downloads -----------------------------------------------------------------------------

/// The download cap: Lark's limit, which `LARK_MCP_DOWNLOAD_MAX_BYTES` can only lower (an
/// undocumented knob so tests need not move 100 MB).
static DOWNLOAD_MAX: LazyLock<u64> = LazyLock::new(|| {
    std::env::var("LARK_MCP_DOWNLOAD_MAX_BYTES")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|n| *n > 0)
        .map_or(DOWNLOAD_LIMIT, |n| n.min(DOWNLOAD_LIMIT))
});

fn size_text(bytes: u64) -> String {
    const MB: u64 = 1024 * 1024;
    if bytes >= MB && bytes.is_multiple_of(MB) {
        format!("{} MB", bytes / MB)
    } else {
        format!("{bytes} bytes")
    }
}

#[derive(Deserialize, JsonSchema, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
#[schemars(inline)]
enum ResourceKind {
    Image,
    File,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct DownloadArgs {
    /// The message holding the resource (om_…).
    message_id: String,
    /// image_key or file_key from the message (get_message lists them).
    file_key: String,
    /// image or file; inferred from the key (img_… is an image) when omitted.
    kind: Option<ResourceKind>,
    /// File name to save as inside the download directory.
    save_as: Option<String>,
}

#[derive(Serialize, JsonSchema)]
struct Downloaded {
    path: String,
    bytes: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    content_type: Option<String>,
    /// Whether the image is also attached for you to see.
    shown: bool,
}

/// `name` split before its extension's dot, when it has a short one.
fn split_ext(name: &str) -> (&str, &str) {
    match name.rfind('.') {
        Some(i) if i > 0 && name.len() - i - 1 <= EXT_MAX_BYTES && i + 1 < name.len() => {
            name.split_at(i)
        }
        _ => (name, ""),
    }
}

/// A file name that stays inside the download directory, at most [`NAME_MAX_BYTES`] long,
/// cut on a character boundary and keeping its extension.
fn safe_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = base
        .chars()
        .map(|c| {
            if c.is_control() || ":*?\"<>|".contains(c) {
                '_'
            } else {
                c
            }
        })
        .collect();
    let trimmed = cleaned.trim_matches(|c: char| c == '.' || c.is_whitespace());
    if trimmed.is_empty() {
        return "download".into();
    }
    if trimmed.len() <= NAME_MAX_BYTES {
        return trimmed.into();
    }
    let (stem, ext) = split_ext(trimmed);
    let mut cut = NAME_MAX_BYTES - ext.len();
    while !stem.is_char_boundary(cut) {
        cut -= 1;
    }
    let stem = stem[..cut].trim_end_matches(|c: char| c == '.' || c.is_whitespace());
    let stem = if stem.is_empty() { "download" } else { stem };
    format!("{stem}{ext}")
}

/// The `n`th name to try for `name`: itself, then `stem (2).ext`, `stem (3).ext`, …, then
/// random suffixes once the numbered ones are used up.
fn candidate(name: &str, n: u32) -> String {
    if n == 1 {
        return name.into();
    }
    let (stem, ext) = split_ext(name);
    if n <= LAST_NUMBERED {
        format!("{stem} ({n}){ext}")
    } else {
        format!("{stem} ({:08x}){ext}", fastrand::u32(..))
    }
}

/// Unlinks the temporary name of a download when dropped: after a failure, a cancellation
/// or an abandoned call, and after publishing too, when the final name is a second link
/// to the same data.
struct PartPath(PathBuf);

impl Drop for PartPath {
    fn drop(&mut self) {
        // Synchronous because Drop cannot await; one unlink is quick.
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A download on its way to disk: a hidden file of its own in the download directory,
/// never seen under the final name until complete.
struct PartFile {
    file: tokio::fs::File,
    path: PartPath,
    /// Whether the first bytes are worth keeping to show as an image.
    keep_head: bool,
    /// The bytes so far, while they could still be shown inline (≤ [`INLINE_IMAGE_LIMIT`]).
    head: Option<Vec<u8>>,
}

impl FileSink for PartFile {
    async fn restart(&mut self) -> std::io::Result<()> {
        self.file.set_len(0).await?;
        self.file.rewind().await?;
        self.head = self.keep_head.then(Vec::new);
        Ok(())
    }

    async fn write(&mut self, chunk: &[u8]) -> std::io::Result<()> {
        self.file.write_all(chunk).await?;
        if let Some(head) = &mut self.head {
            if head.len() + chunk.len() <= INLINE_IMAGE_LIMIT {
                head.extend_from_slice(chunk);
            } else {
                // Too large to show: memory stays bounded by the limit.
                self.head = None;
            }
        }
        Ok(())
    }
}

/// Creates the temporary file a download is written to, `.<stem>.part-<random>` in `dir`.
/// `create_new` never opens an existing file or follows a link. Blocking.
fn create_part(dir: &Path, stem: &str) -> Result<(File, PartPath), ToolError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| ToolError::msg(format!("cannot create {}: {e}", dir.display())))?;
    for _ in 0..RANDOM_TRIES {
        let path = dir.join(format!(".{stem}.part-{:016x}", fastrand::u64(..)));
        match std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(f) => return Ok((f, PartPath(path))),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                return Err(ToolError::msg(format!(
                    "cannot create a file in {}: {e}; nothing was saved",
                    dir.display()
                )));
            }
        }
    }
    Err(ToolError::msg(format!(
        "cannot create a temporary file in {}: {RANDOM_TRIES} random names were taken; nothing was saved",
        dir.display()
    )))
}

/// Gives the complete download in `part` (also open as `file`) the first free name among
/// [`candidate`]s of `name` in `dir`. A hard link is refused when anything, a dangling
/// link included, has the name, so nothing is replaced and two downloads racing for one
/// name end under two names. Blocking.
fn publish(part: &Path, file: &File, dir: &Path, name: &str) -> Result<PathBuf, ToolError> {
    for n in 1..=LAST_NUMBERED + RANDOM_TRIES {
        let target = dir.join(candidate(name, n));
        let placed = match std::fs::hard_link(part, &target) {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => copy_new(file, &target),
            linked => linked,
        };
        match placed {
            Ok(()) => return Ok(target),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                return Err(ToolError::msg(format!(
                    "cannot create {}: {e}; nothing was saved",
                    target.display()
                )));
            }
        }
    }
    Err(ToolError::msg(format!(
        "{name}, its numbered variants up to ({LAST_NUMBERED}) and {RANDOM_TRIES} random ones already exist in {}; nothing was saved; pass another save_as",
        dir.display()
    )))
}

/// For file systems without hard links: a new file under `target`, copied from the
/// download's own handle. `create_new` still refuses any existing name or link.
fn copy_new(mut file: &File, target: &Path) -> std::io::Result<()> {
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(target)?;
    let copied = file
        .rewind()
        .and_then(|()| std::io::copy(&mut file, &mut out));
    if let Err(e) = copied {
        drop(out);
        let _ = std::fs::remove_file(target);
        return Err(e);
    }
    Ok(())
}

async fn download_resource(
    ctx: ToolCtx,
    a: DownloadArgs,
) -> Result<(Downloaded, Vec<Media>), ToolError> {
    let Some(dir) = ctx.shared.policy.download_dir() else {
        return Err(ToolError::msg(
            "Downloads are off: the server was started without --download-dir.",
        ));
    };
    let kind = a.kind.unwrap_or(if a.file_key.starts_with("img_") {
        ResourceKind::Image
    } else {
        ResourceKind::File
    });
    let path = api_path(
        "/open-apis/im/v1/messages/{}/resources/{}",
        &[&a.message_id, &a.file_key],
    )
    .map_err(|e| ToolError::invalid("file_key", e.msg))?;
    let max = *DOWNLOAD_MAX;
    let req = Request::get("download message resource", path).query(
        "type",
        if kind == ResourceKind::Image {
            "image"
        } else {
            "file"
        },
    );
    // It writes only here (a file in the download directory), but a dry run still shows
    // what it would fetch, and the audit log records it.
    ctx.guard(Write::reaching(Vec::new()), &req).await?;
    let (file, part) = {
        let (dir, stem) = (dir.to_path_buf(), safe_name(&a.file_key));
        blocking(move || create_part(&dir, &stem)).await?
    };
    let mut sink = PartFile {
        file: tokio::fs::File::from_std(file),
        path: part,
        keep_head: kind == ResourceKind::Image,
        head: None,
    };
    let cannot_write = |e: std::io::Error| {
        ToolError::msg(format!(
            "cannot write the download into {}: {e}; nothing was saved",
            dir.display()
        ))
    };
    // Every way out before `publish` drops `sink`, whose `PartPath` removes the partial file.
    let got = match ctx
        .client()
        .download(req, max, &ctx.cancel, &mut sink)
        .await
    {
        Ok(got) => got,
        Err(DownloadError::TooLarge { .. }) => {
            return Err(ToolError::msg(format!(
                "{} is larger than {}, the most this server downloads; nothing was saved.",
                a.file_key,
                size_text(max)
            )));
        }
        Err(DownloadError::Sink(e)) => return Err(cannot_write(e)),
        Err(DownloadError::Lark(e)) => return Err(e.into()),
    };
    // Surfaces the last write's error before the file gets its name.
    sink.file.flush().await.map_err(cannot_write)?;
    let PartFile {
        file, path, head, ..
    } = sink;
    let file = file.into_std().await;
    let name = safe_name(
        a.save_as
            .as_deref()
            .or(got.file_name.as_deref())
            .unwrap_or(&a.file_key),
    );
    let target = {
        let dir = dir.to_path_buf();
        // `path` moves in so the temporary name goes only once the final one exists.
        blocking(move || publish(&path.0, &file, &dir, &name)).await?
    };
    let mime = got.content_type.clone().unwrap_or_default();
    let shown = head.filter(|_| kind == ResourceKind::Image && mime.starts_with("image/"));
    let media = match &shown {
        Some(bytes) => vec![Media {
            base64: base64::engine::general_purpose::STANDARD.encode(bytes),
            mime,
        }],
        None => Vec::new(),
    };
    Ok((
        Downloaded {
            path: target.display().to_string(),
            bytes: usize::try_from(got.len).unwrap_or(usize::MAX),
            content_type: got.content_type,
            shown: shown.is_some(),
        },
        media,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn download_names_cannot_escape_the_directory() {
        assert_eq!(safe_name("../../etc/passwd"), "passwd");
        assert_eq!(safe_name("..\\x.png"), "x.png");
        assert_eq!(safe_name(".."), "download");
        assert_eq!(safe_name("报告 Q3.pdf"), "报告 Q3.pdf");
        assert_eq!(safe_name("a:b?.txt"), "a_b_.txt");
    }

    #[test]
    fn long_names_are_cut_by_bytes_on_a_character_boundary_keeping_the_extension() {
        let long = format!("{}.pdf", "报".repeat(100));
        let cut = safe_name(&long);
        assert!(cut.len() <= NAME_MAX_BYTES, "{} bytes", cut.len());
        assert!(cut.ends_with("报.pdf"), "{cut}");
        let no_ext = "é".repeat(150);
        assert!(safe_name(&no_ext).len() <= NAME_MAX_BYTES);
        let odd_ext = format!("a.{}", "x".repeat(300));
        assert_eq!(safe_name(&odd_ext).len(), NAME_MAX_BYTES);
        for n in [1, 2, LAST_NUMBERED, LAST_NUMBERED + 1] {
            assert!(candidate(&cut, n).len() <= 255);
        }
    }

    #[test]
    fn clashing_names_get_a_numbered_then_random_suffix_before_the_extension() {
        assert_eq!(candidate("a.pdf", 1), "a.pdf");
        assert_eq!(candidate("a.pdf", 2), "a (2).pdf");
        assert_eq!(candidate("a.tar.gz", 3), "a.tar (3).gz");
        assert_eq!(candidate("README", 2), "README (2)");
        let random = candidate("a.pdf", LAST_NUMBERED + 1);
        assert!(random.starts_with("a (") && random.ends_with(").pdf") && random.len() == 16);
    }

    /// A fresh directory under the system's temp dir, removed on drop.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(tag: &str) -> Scratch {
            let dir = std::env::temp_dir().join(format!(
                "lark-mcp-unit-{tag}-{}-{:016x}",
                std::process::id(),
                fastrand::u64(..)
            ));
            std::fs::create_dir_all(&dir).expect("create a scratch dir");
            Scratch(dir)
        }

        fn names(&self) -> Vec<String> {
            let mut names: Vec<String> = std::fs::read_dir(&self.0)
                .expect("read the scratch dir")
                .map(|e| e.expect("an entry").file_name().to_string_lossy().into())
                .collect();
            names.sort();
            names
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// A finished download of `content` in `dir`, as `download_resource` has it before
    /// publishing.
    fn finished_part(dir: &Path, content: &[u8]) -> (File, PartPath) {
        let (mut file, part) = create_part(dir, "file_v3_x").expect("a part file");
        std::io::Write::write_all(&mut file, content).expect("write the part");
        (file, part)
    }

    #[test]
    fn downloads_racing_for_one_name_end_as_distinct_files_and_leave_no_part_files() {
        const RACERS: usize = 8;
        let dir = Scratch::new("race");
        let barrier = std::sync::Barrier::new(RACERS);
        let mut saved: Vec<(usize, PathBuf)> = std::thread::scope(|scope| {
            let racers: Vec<_> = (0..RACERS)
                .map(|i| {
                    let (dir, barrier) = (&dir.0, &barrier);
                    scope.spawn(move || {
                        let (file, part) = finished_part(dir, format!("racer {i}").as_bytes());
                        barrier.wait();
                        let target = publish(&part.0, &file, dir, "same.txt");
                        (i, target.map_err(|e| e.text).expect("published"))
                    })
                })
                .collect();
            racers
                .into_iter()
                .map(|r| r.join().expect("a racer finished"))
                .collect()
        });
        saved.sort_by(|a, b| a.1.cmp(&b.1));
        saved.dedup_by(|a, b| a.1 == b.1);
        assert_eq!(saved.len(), RACERS, "every racer has its own file");
        for (i, path) in &saved {
            let got = std::fs::read(path).expect("read a published file");
            assert_eq!(got, format!("racer {i}").as_bytes(), "{}", path.display());
        }
        let mut expected: Vec<String> = (1..=RACERS as u32)
            .map(|n| candidate("same.txt", n))
            .collect();
        expected.sort();
        assert_eq!(dir.names(), expected, "no .part file is left");
    }

    #[test]
    fn publishing_never_writes_through_a_dangling_link_and_a_failure_leaves_nothing() {
        let dir = Scratch::new("dangling");
        let nowhere = dir.0.join("nowhere");
        std::os::unix::fs::symlink(&nowhere, dir.0.join("x.txt")).expect("symlink");
        let (file, part) = finished_part(&dir.0, b"data");
        let target = publish(&part.0, &file, &dir.0, "x.txt").map_err(|e| e.text);
        drop(part);
        assert_eq!(target, Ok(dir.0.join("x (2).txt")));
        assert!(!nowhere.exists(), "the link's target was not created");
        assert_eq!(dir.names(), ["x (2).txt", "x.txt"]);

        // Without a directory to publish into, the part file still goes away.
        let (file, part) = finished_part(&dir.0, b"data");
        let missing = dir.0.join("missing");
        assert!(publish(&part.0, &file, &missing, "y.txt").is_err());
        drop(part);
        assert_eq!(dir.names(), ["x (2).txt", "x.txt"]);
    }

    #[test]
    fn the_copy_fallback_creates_only_new_files_from_the_start_of_the_part() {
        let dir = Scratch::new("copy");
        let (file, _part) = finished_part(&dir.0, b"whole content");
        let target = dir.0.join("copy.txt");
        copy_new(&file, &target).expect("copied");
        assert_eq!(std::fs::read(&target).ok(), Some(b"whole content".to_vec()));
        let again = copy_new(&file, &target).map_err(|e| e.kind());
        assert_eq!(again, Err(std::io::ErrorKind::AlreadyExists));
        assert_eq!(std::fs::read(&target).ok(), Some(b"whole content".to_vec()));
    }

    #[test]
    fn relative_and_dotdot_paths_are_refused_before_the_filesystem() {
        let dirs = [PathBuf::from("/nonexistent-allowed")];
        for p in ["x.png", "/nonexistent-allowed/../etc/passwd"] {
            let e = read_allowed(p, &dirs, IMAGE_LIMIT, image_mime)
                .err()
                .map(|e| e.text);
            assert!(e.is_some_and(|t| t.starts_with("Invalid argument `path`: ")));
        }
    }
}
