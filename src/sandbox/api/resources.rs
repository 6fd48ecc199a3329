//! `im/v1/images` and `im/v1/files`: multipart uploads and downloads of what this app
//! uploaded. Also the bytes behind seeded messages' keys (a real tiny PNG for images,
//! format-shaped stubs for files). Upload bodies are parsed by `multer`.

use std::convert::Infallible;

use axum::http::Method;
use bytes::Bytes;
use serde_json::json;

use crate::sandbox::endpoint::{Call, Endpoint};
use crate::sandbox::envelope::{ApiError, Reply, codes};
use crate::sandbox::world::{ResourceKind, ResourceRef, StoredResource, World, random_hex};

/// Lark's image limit (10 MB); the file limit is `Options::file_upload_max_bytes`.
pub const IMAGE_MAX_BYTES: usize = 10 * 1024 * 1024;
/// What axum buffers for an upload request; the handlers apply the real limits.
const UPLOAD_BODY_LIMIT: usize = 128 * 1024 * 1024;
const FILE_TYPES: &[&str] = &["opus", "mp4", "pdf", "doc", "xls", "ppt", "stream"];

pub fn endpoints() -> Vec<Endpoint> {
    use Method as M;
    vec![
        Endpoint::new(
            "upload_image",
            M::POST,
            "/open-apis/im/v1/images",
            upload_image,
        )
        .with_body_limit(UPLOAD_BODY_LIMIT),
        Endpoint::new(
            "upload_file",
            M::POST,
            "/open-apis/im/v1/files",
            upload_file,
        )
        .with_body_limit(UPLOAD_BODY_LIMIT),
        Endpoint::new(
            "download_own_image",
            M::GET,
            "/open-apis/im/v1/images/{image_key}",
            download_image,
        ),
        Endpoint::new(
            "download_own_file",
            M::GET,
            "/open-apis/im/v1/files/{file_key}",
            download_file,
        ),
    ]
}

// ---- errors -----------------------------------------------------------------------------

pub fn invalid_param(why: &str) -> ApiError {
    ApiError::new(
        400,
        codes::RES_INVALID_PARAM,
        format!("Invalid request param. {why}"),
    )
}

fn bot_check(world: &World) -> Result<(), ApiError> {
    if world.app.bot_activated {
        Ok(())
    } else {
        Err(ApiError::new(
            400,
            codes::RES_BOT_NOT_ACTIVATED,
            "App does not enable bot feature.",
        ))
    }
}

// ---- uploads ------------------------------------------------------------------------------

fn form(call: &Call) -> Result<Vec<Part>, ApiError> {
    let ct = call.content_type.as_deref().unwrap_or("");
    parse_multipart(ct, call.body.clone()).map_err(|e| invalid_param(&e))
}

fn text_field<'a>(parts: &'a [Part], name: &str) -> Result<Option<&'a str>, ApiError> {
    match parts.iter().find(|p| p.name == name) {
        None => Ok(None),
        Some(p) => std::str::from_utf8(&p.data)
            .map(|s| Some(s.trim()).filter(|s| !s.is_empty()))
            .map_err(|_| invalid_param(&format!("{name} is not UTF-8 text."))),
    }
}

fn upload_image(call: &mut Call, world: &mut World) -> Result<Reply, ApiError> {
    bot_check(world)?;
    let parts = form(call)?;
    let image_type = text_field(&parts, "image_type")?
        .ok_or_else(|| invalid_param("image_type is required."))?;
    if !["message", "avatar"].contains(&image_type) {
        return Err(invalid_param("image_type must be message or avatar."));
    }
    let image = parts
        .iter()
        .find(|p| p.name == "image")
        .ok_or_else(|| invalid_param("image is required."))?;
    if image.data.is_empty() {
        return Err(ApiError::new(
            400,
            codes::RES_EMPTY,
            "File's size can't be 0.",
        ));
    }
    if image.data.len() > IMAGE_MAX_BYTES {
        return Err(too_large());
    }
    let format = sniff_image(&image.data).ok_or_else(|| {
        ApiError::new(
            400,
            codes::RES_IMAGE_FORMAT,
            "Can't regonnize the image format.",
        )
    })?;
    let key = format!("img_v3_{}", random_hex(26));
    world.resources.insert(
        key.clone(),
        StoredResource {
            kind: ResourceKind::Image,
            bytes: image.data.to_vec(),
            content_type: format.content_type.into(),
            file_name: image
                .filename
                .clone()
                .filter(|f| !f.is_empty())
                .unwrap_or_else(|| format!("{key}.{}", format.ext)),
            uploaded_by_app: true,
            sub_type: image_type.into(),
        },
    );
    Ok(Reply::Data(json!({"image_key": key})))
}

fn too_large() -> ApiError {
    ApiError::new(
        400,
        codes::RES_TOO_LARGE,
        "The file size exceed the max value.",
    )
}

fn upload_file(call: &mut Call, world: &mut World) -> Result<Reply, ApiError> {
    bot_check(world)?;
    let parts = form(call)?;
    let file_type =
        text_field(&parts, "file_type")?.ok_or_else(|| invalid_param("file_type is required."))?;
    if !FILE_TYPES.contains(&file_type) {
        return Err(invalid_param(&format!(
            "file_type must be one of: {}.",
            FILE_TYPES.join(", ")
        )));
    }
    let file_name =
        text_field(&parts, "file_name")?.ok_or_else(|| invalid_param("file_name is required."))?;
    if let Some(d) = text_field(&parts, "duration")?
        && d.parse::<u64>().is_err()
    {
        return Err(invalid_param("duration must be an integer (milliseconds)."));
    }
    let file = parts
        .iter()
        .find(|p| p.name == "file")
        .ok_or_else(|| invalid_param("file is required."))?;
    if file.data.is_empty() {
        return Err(ApiError::new(
            400,
            codes::RES_EMPTY,
            "File's size can't be 0.",
        ));
    }
    if file.data.len() as u64 > call.options.file_upload_max_bytes {
        return Err(too_large());
    }
    let content_type = file
        .content_type
        .as_deref()
        .filter(|t| !t.is_empty() && *t != "application/octet-stream")
        .map(str::to_string)
        .unwrap_or_else(|| content_type_for_name(file_name).to_string());
    let key = format!("file_v3_{}", random_hex(26));
    world.resources.insert(
        key.clone(),
        StoredResource {
            kind: ResourceKind::File,
            bytes: file.data.to_vec(),
            content_type,
            file_name: file_name.to_string(),
            uploaded_by_app: true,
            sub_type: file_type.into(),
        },
    );
    Ok(Reply::Data(json!({"file_key": key})))
}

// ---- downloads of own uploads --------------------------------------------------------------

fn own_resource<'w>(
    world: &'w World,
    key: &str,
    kind: ResourceKind,
) -> Result<&'w StoredResource, ApiError> {
    bot_check(world)?;
    let not_found = || {
        let what = if kind == ResourceKind::Image {
            "Image"
        } else {
            "File"
        };
        ApiError::new(
            400,
            codes::RES_NOT_FOUND,
            format!("{what} has been deleted"),
        )
    };
    let res = world
        .resources
        .get(key)
        .filter(|r| r.kind == kind)
        .ok_or_else(not_found)?;
    if !res.uploaded_by_app {
        return Err(ApiError::new(
            400,
            codes::RES_NOT_SENDER,
            "The app is not the resource sender",
        ));
    }
    Ok(res)
}

fn download_image(call: &mut Call, world: &mut World) -> Result<Reply, ApiError> {
    let res = own_resource(world, call.path_param("image_key"), ResourceKind::Image)?;
    if res.sub_type != "message" {
        return Err(invalid_param("only message images can be downloaded."));
    }
    Ok(binary(res))
}

fn download_file(call: &mut Call, world: &mut World) -> Result<Reply, ApiError> {
    let res = own_resource(world, call.path_param("file_key"), ResourceKind::File)?;
    Ok(binary(res))
}

pub fn binary(res: &StoredResource) -> Reply {
    Reply::Binary {
        content_type: res.content_type.clone(),
        file_name: res.file_name.clone(),
        bytes: res.bytes.clone(),
    }
}

// ---- placeholders for seeded keys ---------------------------------------------------------

/// Deterministic bytes for a key a seeded message mentions: a valid PNG for images, and
/// for files something shaped like the file name says (PDF, ZIP/OOXML, else a PDF-ish stub).
pub fn placeholder(r: &ResourceRef) -> StoredResource {
    match r.kind {
        ResourceKind::Image => StoredResource {
            kind: ResourceKind::Image,
            bytes: PLACEHOLDER_PNG.to_vec(),
            content_type: "image/png".into(),
            file_name: format!("{}.png", r.key),
            uploaded_by_app: false,
            sub_type: "message".into(),
        },
        ResourceKind::File => {
            let name = r.file_name.clone().unwrap_or_else(|| r.key.clone());
            let ext = extension(&name);
            let bytes = match ext.as_str() {
                "zip" | "xlsx" | "docx" | "pptx" => {
                    // An empty ZIP archive: just the end-of-central-directory record.
                    let mut b = b"PK\x05\x06".to_vec();
                    b.extend_from_slice(&[0u8; 18]);
                    b
                }
                _ => pdf_stub(&r.key),
            };
            StoredResource {
                kind: ResourceKind::File,
                bytes,
                content_type: content_type_for_name(&name).into(),
                file_name: name,
                uploaded_by_app: false,
                sub_type: "stream".into(),
            }
        }
    }
}

fn pdf_stub(key: &str) -> Vec<u8> {
    format!(
        "%PDF-1.4\n% sandbox placeholder for {key}\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n\
         2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
    )
    .into_bytes()
}

fn extension(name: &str) -> String {
    name.rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default()
}

pub fn content_type_for_name(name: &str) -> &'static str {
    match extension(name).as_str() {
        "pdf" => "application/pdf",
        "zip" => "application/zip",
        "xls" => "application/vnd.ms-excel",
        "xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "doc" => "application/msword",
        "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "ppt" => "application/vnd.ms-powerpoint",
        "pptx" => "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "mp4" => "video/mp4",
        "opus" => "audio/opus",
        "txt" | "log" | "md" => "text/plain",
        "csv" => "text/csv",
        "json" => "application/json",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        _ => "application/octet-stream",
    }
}

/// The bytes behind every seeded image key: a valid 16×16 solid-blue RGB PNG (79 bytes,
/// zlib-compressed IDAT, real CRCs), generated once with Python's `zlib` and `struct`.
/// A fixed literal, since nothing needs the pixels to vary and an encoder is code to keep.
pub const PLACEHOLDER_PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x10, 0x08, 0x02, 0x00, 0x00, 0x00, 0x90, 0x91, 0x68,
    0x36, 0x00, 0x00, 0x00, 0x16, 0x49, 0x44, 0x41, 0x54, 0x78, 0xda, 0x63, 0x30, 0x2e, 0xf8, 0x4f,
    0x12, 0x62, 0x18, 0xd5, 0x30, 0xaa, 0x61, 0xf8, 0x6a, 0x00, 0x00, 0x6c, 0x81, 0xa2, 0x10, 0x28,
    0x5b, 0x49, 0xa5, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];

// ---- image sniffing ---------------------------------------------------------------------------

pub struct ImageFormat {
    pub content_type: &'static str,
    pub ext: &'static str,
}

/// The formats Lark's upload accepts, recognised by their magic bytes.
pub fn sniff_image(b: &[u8]) -> Option<ImageFormat> {
    let f = |content_type, ext| Some(ImageFormat { content_type, ext });
    if b.starts_with(b"\x89PNG\r\n\x1a\n") {
        f("image/png", "png")
    } else if b.starts_with(&[0xFF, 0xD8, 0xFF]) {
        f("image/jpeg", "jpg")
    } else if b.starts_with(b"GIF87a") || b.starts_with(b"GIF89a") {
        f("image/gif", "gif")
    } else if b.len() >= 12 && b.starts_with(b"RIFF") && &b[8..12] == b"WEBP" {
        f("image/webp", "webp")
    } else if b.starts_with(b"BM") && b.len() >= 26 {
        f("image/bmp", "bmp")
    } else if b.starts_with(&[0, 0, 1, 0]) && b.len() >= 22 {
        f("image/x-icon", "ico")
    } else if b.starts_with(b"II*\0") || b.starts_with(b"MM\0*") {
        // Lark converts TIFF to JPG; the sandbox keeps the bytes as sent.
        f("image/tiff", "tiff")
    } else {
        None
    }
}

// ---- multipart/form-data ----------------------------------------------------------------------

/// One part of a `multipart/form-data` body.
#[derive(Debug)]
pub struct Part {
    pub name: String,
    pub filename: Option<String>,
    pub content_type: Option<String>,
    pub data: Bytes,
}

/// Parses a `multipart/form-data` body (RFC 7578) given the request's Content-Type, with
/// `multer` (the parser behind axum's `Multipart`). Not axum's extractor itself: it caps
/// bodies at 2 MB unless a router layer says otherwise, and uploads here go to 128 MB with
/// the real limits checked by the handlers. Handlers are synchronous and the body is
/// already in memory, so every poll completes at once and `block_on` never waits.
pub fn parse_multipart(content_type: &str, body: Bytes) -> Result<Vec<Part>, String> {
    let boundary = multer::parse_boundary(content_type).map_err(|e| match e {
        multer::Error::NoBoundary => "multipart boundary is missing.".to_string(),
        _ => "Content-Type must be multipart/form-data.".to_string(),
    })?;
    let stream = futures::stream::once(async move { Ok::<Bytes, Infallible>(body) });
    let mut form = multer::Multipart::new(stream, boundary);
    futures::executor::block_on(async {
        let mut parts = Vec::new();
        while let Some(field) = form.next_field().await.map_err(describe)? {
            let name = field
                .name()
                .filter(|n| !n.is_empty())
                .map(str::to_string)
                .ok_or("multipart part has no name.")?;
            let filename = field.file_name().map(str::to_string);
            let content_type = field.content_type().map(|m| m.to_string());
            let data = field.bytes().await.map_err(describe)?;
            parts.push(Part {
                name,
                filename,
                content_type,
                data,
            });
        }
        Ok(parts)
    })
}

/// The sandbox's wording for what `multer` rejects (the code is 234001 either way).
fn describe(e: multer::Error) -> String {
    use multer::Error as E;
    match e {
        E::IncompleteHeaders | E::ReadHeaderFailed(_) => "multipart part headers never end.".into(),
        E::DecodeHeaderName { .. } | E::DecodeHeaderValue { .. } => {
            "multipart headers are not UTF-8.".into()
        }
        E::IncompleteStream | E::IncompleteFieldData { .. } => {
            "multipart body is not terminated.".into()
        }
        other => format!("malformed multipart body: {other}."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(content_type: &str, body: &[u8]) -> Result<Vec<Part>, String> {
        parse_multipart(content_type, Bytes::copy_from_slice(body))
    }

    fn body(boundary: &str, parts: &[(&str, Option<&str>, &[u8])]) -> Vec<u8> {
        let mut b = Vec::new();
        for (name, filename, data) in parts {
            b.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
            match filename {
                Some(f) => b.extend_from_slice(
                    format!(
                        "Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\n\
                         Content-Type: application/octet-stream\r\n\r\n"
                    )
                    .as_bytes(),
                ),
                None => b.extend_from_slice(
                    format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
                ),
            }
            b.extend_from_slice(data);
            b.extend_from_slice(b"\r\n");
        }
        b.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        b
    }

    #[test]
    fn parses_fields_and_files_with_binary_data() {
        let data: &[u8] = b"\x89PNG\r\n--not-the-boundary\r\n\x00\xff";
        let b = body(
            "XyZ123",
            &[
                ("image_type", None, b"message"),
                ("image", Some("a.png"), data),
            ],
        );
        let parts = parse("multipart/form-data; boundary=XyZ123", &b).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].name, "image_type");
        assert_eq!(&parts[0].data[..], b"message");
        assert_eq!(parts[0].filename, None);
        assert_eq!(parts[1].name, "image");
        assert_eq!(parts[1].filename.as_deref(), Some("a.png"));
        assert_eq!(
            parts[1].content_type.as_deref(),
            Some("application/octet-stream")
        );
        assert_eq!(&parts[1].data[..], data);
    }

    #[test]
    fn quoted_boundaries_and_params_and_empty_parts() {
        let b = body(
            "a;b c",
            &[("x", None, b""), ("y", Some("q\"uote;d.txt"), b"1")],
        );
        let b = String::from_utf8(b)
            .unwrap()
            .replace("q\"uote;d.txt", "q\\\"uote;d.txt")
            .into_bytes();
        let parts = parse("Multipart/Form-Data; boundary=\"a;b c\"", &b).unwrap();
        assert_eq!(&parts[0].data[..], b"");
        assert_eq!(parts[1].filename.as_deref(), Some("q\"uote;d.txt"));
    }

    #[test]
    fn rejects_what_is_not_multipart() {
        assert!(parse("application/json", b"{}").is_err());
        assert!(parse("multipart/form-data", b"--x\r\n").is_err());
        let unterminated = b"--B\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nxyz";
        assert!(parse("multipart/form-data; boundary=B", unterminated).is_err());
        let nameless = b"--B\r\nContent-Disposition: form-data\r\n\r\nxyz\r\n--B--";
        assert!(parse("multipart/form-data; boundary=B", nameless).is_err());
        assert!(parse("multipart/form-data; boundary=B", b"no delimiter").is_err());
    }

    #[test]
    fn the_placeholder_is_a_16_by_16_png() {
        let png = PLACEHOLDER_PNG;
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
        assert_eq!(&png[12..16], b"IHDR");
        assert_eq!(
            &png[16..24],
            &[0, 0, 0, 16, 0, 0, 0, 16],
            "width and height"
        );
        assert!(png.ends_with(b"IEND\xAE\x42\x60\x82"), "IEND with its CRC");
        assert_eq!(sniff_image(png).map(|f| f.ext), Some("png"));
    }

    #[test]
    fn sniffs_the_accepted_formats_only() {
        assert_eq!(
            sniff_image(b"\xFF\xD8\xFF\xE0xx").map(|f| f.ext),
            Some("jpg")
        );
        assert_eq!(sniff_image(b"GIF89a....").map(|f| f.ext), Some("gif"));
        assert_eq!(
            sniff_image(b"RIFF\0\0\0\0WEBPVP8 ").map(|f| f.ext),
            Some("webp")
        );
        assert!(sniff_image(b"%PDF-1.4").is_none());
        assert!(sniff_image(b"").is_none());
    }
}
