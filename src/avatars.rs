//! Profile pictures ("avatars"): validating uploads, re-encoding them, and storing the results.
//!
//! An uploaded picture is untrusted bytes. This module owns every step between those bytes and
//! a file on disk, so that the HTTP layer never has to reason about image formats:
//!
//! * the format is decided by content only (JPEG, PNG, WebP, GIF); a filename or declared
//!   content type is never consulted, so HTML or SVG dressed up as a picture is refused;
//! * dimensions are read from the header and checked before any pixel buffer is allocated, and
//!   the decoder itself runs under allocation limits, so a decompression bomb cannot exhaust
//!   memory;
//! * the picture is always decoded and re-encoded as a fresh JPEG, which drops EXIF (GPS
//!   position, camera serial numbers), ICC, XMP and anything smuggled in extra chunks;
//! * files are named by the server (`{user_id}-{sha256}.jpg`) inside `data_dir/avatars`, which is
//!   never served as static content, and every caller-supplied hash is validated before it can
//!   reach a path.

use std::io::{self, Cursor, Write};
use std::path::{Path, PathBuf};

use image::codecs::jpeg::JpegEncoder;
use image::imageops::{self, FilterType};
use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageError, ImageFormat, ImageReader, RgbImage};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// Default upper bound on the size of an uploaded picture: 5 MiB (5,242,880 bytes).
pub const DEFAULT_MAX_BYTES: usize = 5 * 1024 * 1024;

/// Longest side, in pixels, of the stored picture. Smaller pictures are never upscaled.
pub const FULL_SIZE: u32 = 512;

/// Side, in pixels, of the square thumbnail (a centre crop of the picture).
pub const THUMB_SIZE: u32 = 96;

const DEFAULT_MAX_PIXELS: u64 = 40_000_000;
const DEFAULT_MAX_SIDE: u32 = 8_000;
const JPEG_QUALITY: u8 = 85;
/// Headroom above the decoded RGBA buffer for decoder bookkeeping (row buffers, LZW tables…).
const DECODER_ALLOC_MARGIN: u64 = 64 * 1024 * 1024;
const RESIZE_FILTER: FilterType = FilterType::Lanczos3;
const AVATAR_DIR: &str = "avatars";

/// Limits applied to an uploaded picture before and while it is decoded.
#[derive(Debug, Clone)]
pub struct AvatarLimits {
    /// Largest accepted upload, in bytes.
    pub max_bytes: usize,
    /// Largest accepted width × height.
    pub max_pixels: u64,
    /// Largest accepted width or height.
    pub max_side: u32,
}

impl Default for AvatarLimits {
    /// 5 MiB, 40 megapixels, 8,000 pixels per side.
    fn default() -> Self {
        Self {
            max_bytes: DEFAULT_MAX_BYTES,
            max_pixels: DEFAULT_MAX_PIXELS,
            max_side: DEFAULT_MAX_SIDE,
        }
    }
}

/// A picture that passed validation and was re-encoded, ready to be stored.
#[derive(Debug, Clone)]
pub struct ProcessedAvatar {
    /// The picture as a JPEG whose longest side is at most [`FULL_SIZE`].
    pub full: Vec<u8>,
    /// A [`THUMB_SIZE`] × [`THUMB_SIZE`] JPEG centre crop of the picture.
    pub thumb: Vec<u8>,
    /// Lowercase hex SHA-256 of `full`; names the stored files and busts caches.
    pub content_hash: String,
    /// Width of `full`, in pixels.
    pub width: u32,
    /// Height of `full`, in pixels.
    pub height: u32,
}

/// Why an uploaded picture was refused or could not be processed.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum AvatarError {
    /// The upload has more bytes than allowed (HTTP 413).
    #[error("picture exceeds the size limit")]
    TooLarge,
    /// The content is not a JPEG, PNG, WebP or GIF image (HTTP 422).
    #[error("picture is not a JPEG, PNG, WebP or GIF image")]
    UnsupportedFormat,
    /// The picture's width, height or pixel count is over the limit (HTTP 422).
    #[error("picture dimensions exceed the limit")]
    TooManyPixels,
    /// The picture is truncated or corrupt (HTTP 422).
    #[error("picture could not be decoded: {0}")]
    Undecodable(String),
    /// Re-encoding the picture failed; a server-side problem (HTTP 500).
    #[error("picture could not be re-encoded: {0}")]
    Encoding(String),
}

impl AvatarError {
    /// A sentence that can be shown to the person who uploaded the picture.
    pub fn user_message(&self) -> &'static str {
        match self {
            Self::TooLarge => "The picture file is too large. Please choose a smaller file.",
            Self::UnsupportedFormat => "The picture must be a JPEG, PNG, WebP or GIF image.",
            Self::TooManyPixels => {
                "The picture's dimensions are too large. Please choose a smaller image."
            }
            Self::Undecodable(_) => {
                "The picture could not be read. The file may be damaged or incomplete."
            }
            Self::Encoding(_) => {
                "Something went wrong while processing the picture. Please try again later."
            }
        }
    }
}

/// Validates an uploaded picture and re-encodes it as a stored picture and a thumbnail.
///
/// CPU-bound and potentially slow for large pictures: call it from a blocking context, or use
/// [`process`] from async code.
pub fn process_blocking(
    bytes: &[u8],
    limits: &AvatarLimits,
) -> Result<ProcessedAvatar, AvatarError> {
    if bytes.len() > limits.max_bytes {
        return Err(AvatarError::TooLarge);
    }
    let format = match image::guess_format(bytes) {
        Ok(
            format @ (ImageFormat::Jpeg | ImageFormat::Png | ImageFormat::WebP | ImageFormat::Gif),
        ) => format,
        _ => return Err(AvatarError::UnsupportedFormat),
    };

    // image's JPEG decoder is lenient and fills a cut-off scan with grey instead of failing.
    if format == ImageFormat::Jpeg && !jpeg_is_complete(bytes) {
        return Err(AvatarError::Undecodable(
            "the JPEG data ends before its end-of-image marker".into(),
        ));
    }
    let decoded = decode(bytes, format, limits)?;
    let full = fit_within(flatten_onto_white(decoded), FULL_SIZE);
    let thumb = square_thumbnail(&full, THUMB_SIZE);

    let full_jpeg = encode_jpeg(&full)?;
    let thumb_jpeg = encode_jpeg(&thumb)?;
    let content_hash = format!("{:x}", Sha256::digest(&full_jpeg));
    let (width, height) = full.dimensions();
    Ok(ProcessedAvatar {
        full: full_jpeg,
        thumb: thumb_jpeg,
        content_hash,
        width,
        height,
    })
}

/// Async wrapper around [`process_blocking`] that runs it on tokio's blocking thread pool, so
/// decoding never stalls the executor.
pub async fn process(bytes: Vec<u8>, limits: AvatarLimits) -> Result<ProcessedAvatar, AvatarError> {
    tokio::task::spawn_blocking(move || process_blocking(&bytes, &limits))
        .await
        .map_err(|e| AvatarError::Encoding(format!("image processing task failed: {e}")))?
}

fn decode(
    bytes: &[u8],
    format: ImageFormat,
    limits: &AvatarLimits,
) -> Result<DynamicImage, AvatarError> {
    let max_alloc = limits
        .max_pixels
        .saturating_mul(4)
        .saturating_add(DECODER_ALLOC_MARGIN);
    let mut decoder_limits = image::Limits::default();
    decoder_limits.max_image_width = Some(limits.max_side);
    decoder_limits.max_image_height = Some(limits.max_side);
    decoder_limits.max_alloc = Some(max_alloc);

    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    reader.limits(decoder_limits);
    // Creating the decoder parses only the header; no pixel buffer exists yet.
    let mut decoder = reader.into_decoder().map_err(decode_error)?;

    let (width, height) = decoder.dimensions();
    if width == 0 || height == 0 {
        return Err(AvatarError::Undecodable("the picture has no pixels".into()));
    }
    if width > limits.max_side
        || height > limits.max_side
        || u64::from(width) * u64::from(height) > limits.max_pixels
        || decoder.total_bytes() > max_alloc
    {
        return Err(AvatarError::TooManyPixels);
    }

    // Phones store rotation in EXIF rather than in the pixels; since EXIF is about to be
    // dropped, apply it now or portraits would end up sideways. Unreadable EXIF is ignored.
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    // For GIF (and animated WebP) this yields the first frame only.
    let mut image = DynamicImage::from_decoder(decoder).map_err(decode_error)?;
    image.apply_orientation(orientation);
    Ok(image)
}

fn decode_error(error: ImageError) -> AvatarError {
    match error {
        ImageError::Limits(_) => AvatarError::TooManyPixels,
        other => AvatarError::Undecodable(other.to_string()),
    }
}

/// Walks the JPEG segment structure and reports whether it reaches the end-of-image marker.
///
/// Segments are skipped by their declared length, so an EOI inside an embedded EXIF thumbnail
/// does not count, and anything appended after the real EOI (e.g. a motion-photo video) is
/// allowed.
fn jpeg_is_complete(bytes: &[u8]) -> bool {
    const EOI: u8 = 0xD9;
    const SOS: u8 = 0xDA;
    let is_standalone = |marker: u8| matches!(marker, 0x01 | 0xD0..=0xD7);

    let mut pos = 2; // after SOI
    loop {
        if bytes.get(pos) != Some(&0xFF) {
            return false;
        }
        while bytes.get(pos) == Some(&0xFF) {
            pos += 1; // a marker may be preceded by any number of fill bytes
        }
        let Some(&marker) = bytes.get(pos) else {
            return false;
        };
        pos += 1;
        if marker == EOI {
            return true;
        }
        if is_standalone(marker) {
            continue;
        }
        let Some(length) = bytes.get(pos..pos + 2) else {
            return false;
        };
        let length = usize::from(u16::from_be_bytes([length[0], length[1]]));
        if length < 2 || pos + length > bytes.len() {
            return false;
        }
        pos += length;
        if marker == SOS {
            // Entropy-coded data follows; it ends at the first marker that is not a stuffed
            // zero byte or a restart marker.
            loop {
                match (bytes.get(pos), bytes.get(pos + 1)) {
                    (Some(0xFF), Some(&next)) if next == 0x00 || is_standalone(next) => pos += 2,
                    (Some(0xFF), Some(_)) => break,
                    (Some(_), _) => pos += 1,
                    (None, _) => return false,
                }
            }
        }
    }
}

/// Converts to 8-bit RGB; transparent areas become white rather than the black JPEG would
/// otherwise show.
fn flatten_onto_white(image: DynamicImage) -> RgbImage {
    if !image.color().has_alpha() {
        return image.into_rgb8();
    }
    let rgba = image.into_rgba8();
    let mut rgb = RgbImage::new(rgba.width(), rgba.height());
    for (dst, src) in rgb.pixels_mut().zip(rgba.pixels()) {
        let alpha = u16::from(src[3]);
        for channel in 0..3 {
            let blended = (u16::from(src[channel]) * alpha + 255 * (255 - alpha) + 127) / 255;
            dst[channel] = u8::try_from(blended).unwrap_or(u8::MAX);
        }
    }
    rgb
}

/// Shrinks so the longest side is at most `max`, keeping the aspect ratio; never enlarges.
fn fit_within(image: RgbImage, max: u32) -> RgbImage {
    let (width, height) = image.dimensions();
    let longest = width.max(height);
    if longest <= max {
        return image;
    }
    let scale = |side: u32| {
        let scaled =
            (u64::from(side) * u64::from(max) + u64::from(longest) / 2) / u64::from(longest);
        u32::try_from(scaled).unwrap_or(max).max(1)
    };
    let (target_width, target_height) = (scale(width), scale(height));
    // Lanczos over a source many times larger than the target costs over a second for a
    // 40-megapixel photo; area-averaging down to twice the target first looks the same and is
    // several times faster.
    let image = if longest > 4 * max {
        imageops::thumbnail(&image, target_width * 2, target_height * 2)
    } else {
        image
    };
    imageops::resize(&image, target_width, target_height, RESIZE_FILTER)
}

fn square_thumbnail(image: &RgbImage, size: u32) -> RgbImage {
    let (width, height) = image.dimensions();
    let side = width.min(height);
    let square =
        imageops::crop_imm(image, (width - side) / 2, (height - side) / 2, side, side).to_image();
    imageops::resize(&square, size, size, RESIZE_FILTER)
}

fn encode_jpeg(image: &RgbImage) -> Result<Vec<u8>, AvatarError> {
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, JPEG_QUALITY)
        .encode_image(image)
        .map_err(|e| AvatarError::Encoding(e.to_string()))?;
    Ok(out)
}

/// Stores processed pictures as files in `data_dir/avatars`.
///
/// File names are built here from the user id and the content hash only, so nothing a client
/// sends can influence a path.
#[derive(Debug, Clone)]
pub struct AvatarStore {
    dir: PathBuf,
}

impl AvatarStore {
    /// A store keeping pictures in `data_dir/avatars` (created on the first save). That
    /// directory must not be served as static content: pictures go out through a handler that
    /// can check access.
    pub fn new(data_dir: &Path) -> Self {
        Self {
            dir: data_dir.join(AVATAR_DIR),
        }
    }

    /// Writes the picture and its thumbnail. Each file is written to a temporary file in the
    /// same directory and renamed into place, so readers never see a partial picture.
    pub async fn save(&self, user_id: Uuid, avatar: &ProcessedAvatar) -> io::Result<()> {
        if !is_valid_hash(&avatar.content_hash) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "avatar content hash is not 64 lowercase hex characters",
            ));
        }
        let dir = self.dir.clone();
        let full_name = file_name(user_id, &avatar.content_hash, false);
        let thumb_name = file_name(user_id, &avatar.content_hash, true);
        let full = avatar.full.clone();
        let thumb = avatar.thumb.clone();
        blocking(move || {
            std::fs::create_dir_all(&dir)?;
            write_atomically(&dir, &thumb_name, &thumb)?;
            write_atomically(&dir, &full_name, &full)
        })
        .await
    }

    /// Reads the picture (or its thumbnail). `Ok(None)` when it does not exist or when
    /// `content_hash` is not a well-formed hash.
    pub async fn read(
        &self,
        user_id: Uuid,
        content_hash: &str,
        thumb: bool,
    ) -> io::Result<Option<Vec<u8>>> {
        if !is_valid_hash(content_hash) {
            return Ok(None);
        }
        let path = self.dir.join(file_name(user_id, content_hash, thumb));
        blocking(move || match std::fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        })
        .await
    }

    /// Deletes the picture and its thumbnail. Missing files, and malformed hashes, are not
    /// errors.
    pub async fn remove(&self, user_id: Uuid, content_hash: &str) -> io::Result<()> {
        if !is_valid_hash(content_hash) {
            return Ok(());
        }
        let paths = [
            self.dir.join(file_name(user_id, content_hash, false)),
            self.dir.join(file_name(user_id, content_hash, true)),
        ];
        blocking(move || paths.iter().try_for_each(|path| remove_if_present(path))).await
    }

    /// Deletes every stored file of the user (when the account is erased); returns how many.
    pub async fn remove_all_for(&self, user_id: Uuid) -> io::Result<usize> {
        let dir = self.dir.clone();
        let prefix = format!("{user_id}-");
        blocking(move || {
            let entries = match std::fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
                Err(e) => return Err(e),
            };
            let mut removed = 0;
            for entry in entries {
                let entry = entry?;
                let belongs_to_user = entry
                    .file_name()
                    .to_str()
                    .is_some_and(|name| name.starts_with(&prefix));
                if belongs_to_user {
                    remove_if_present(&entry.path())?;
                    removed += 1;
                }
            }
            Ok(removed)
        })
        .await
    }
}

fn file_name(user_id: Uuid, content_hash: &str, thumb: bool) -> String {
    if thumb {
        format!("{user_id}-{content_hash}-thumb.jpg")
    } else {
        format!("{user_id}-{content_hash}.jpg")
    }
}

/// Exactly 64 lowercase hex digits: the only shape a hash we generate can have, and one that
/// cannot contain a path separator or `..`.
fn is_valid_hash(hash: &str) -> bool {
    hash.len() == 64 && hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    // The leading dot keeps in-flight files out of `remove_all_for`'s `{user_id}-` prefix.
    let temp_path = dir.join(format!(".{name}.{}.tmp", Uuid::new_v4()));
    let result = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp_path)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temp_path, dir.join(name))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp_path);
    }
    result
}

fn remove_if_present(path: &Path) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Runs filesystem work on the blocking pool (the package does not rely on tokio's `fs`).
async fn blocking<T, F>(work: F) -> io::Result<T>
where
    F: FnOnce() -> io::Result<T> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .map_err(io::Error::other)?
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::codecs::gif::GifEncoder;
    use image::{Frame, Rgb, Rgba, RgbaImage};
    use std::time::{Duration, Instant};

    fn gradient(width: u32, height: u32) -> RgbImage {
        RgbImage::from_fn(width, height, |x, y| {
            Rgb([(x % 256) as u8, (y % 256) as u8, ((x + y) % 256) as u8])
        })
    }

    fn encode(image: DynamicImage, format: ImageFormat) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        image.write_to(&mut out, format).unwrap();
        out.into_inner()
    }

    fn png(width: u32, height: u32) -> Vec<u8> {
        encode(gradient(width, height).into(), ImageFormat::Png)
    }

    fn jpeg(width: u32, height: u32) -> Vec<u8> {
        encode(gradient(width, height).into(), ImageFormat::Jpeg)
    }

    fn decode_jpeg(bytes: &[u8]) -> DynamicImage {
        image::load_from_memory_with_format(bytes, ImageFormat::Jpeg).unwrap()
    }

    /// Inserts an APP1 segment right after the JPEG's SOI marker.
    fn with_app1(jpeg: &[u8], payload: &[u8]) -> Vec<u8> {
        let length = u16::try_from(payload.len() + 2).unwrap();
        let mut out = jpeg[..2].to_vec();
        out.extend_from_slice(&[0xFF, 0xE1]);
        out.extend_from_slice(&length.to_be_bytes());
        out.extend_from_slice(payload);
        out.extend_from_slice(&jpeg[2..]);
        out
    }

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack
            .windows(needle.len())
            .any(|window| window == needle)
    }

    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = 0xFFFF_FFFF_u32;
        for &byte in bytes {
            crc ^= u32::from(byte);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    fn assert_is_reencoded(input: &[u8], avatar: &ProcessedAvatar, width: u32, height: u32) {
        assert_eq!(&avatar.full[..2], &[0xFF, 0xD8]);
        assert_eq!(&avatar.thumb[..2], &[0xFF, 0xD8]);
        assert_ne!(avatar.full, input);
        assert_eq!((avatar.width, avatar.height), (width, height));
        assert_eq!(
            decode_jpeg(&avatar.full).into_rgb8().dimensions(),
            (width, height)
        );
        assert_eq!(
            decode_jpeg(&avatar.thumb).into_rgb8().dimensions(),
            (THUMB_SIZE, THUMB_SIZE)
        );
    }

    #[test]
    fn a_png_is_accepted_and_shrunk_to_fit_keeping_its_aspect_ratio() {
        // Arrange
        let input = png(1000, 500);

        // Act
        let avatar = process_blocking(&input, &AvatarLimits::default()).unwrap();

        // Assert
        assert_is_reencoded(&input, &avatar, 512, 256);
    }

    #[test]
    fn a_picture_over_four_times_the_full_size_is_pre_shrunk_to_the_same_exact_size() {
        // Arrange: wide but thin, so the test stays light while taking the two-step path.
        let input = png(2100, 300);

        // Act
        let avatar = process_blocking(&input, &AvatarLimits::default()).unwrap();

        // Assert
        assert_is_reencoded(&input, &avatar, 512, 73);
    }

    #[test]
    fn a_jpeg_is_accepted_and_re_encoded() {
        // Arrange
        let input = jpeg(600, 800);

        // Act
        let avatar = process_blocking(&input, &AvatarLimits::default()).unwrap();

        // Assert
        assert_is_reencoded(&input, &avatar, 384, 512);
    }

    #[test]
    fn a_lossless_webp_is_accepted_and_small_pictures_are_not_upscaled() {
        // Arrange
        let image = gradient(300, 200);
        let mut input = Vec::new();
        image::codecs::webp::WebPEncoder::new_lossless(&mut input)
            .encode(image.as_raw(), 300, 200, image::ExtendedColorType::Rgb8)
            .unwrap();

        // Act
        let avatar = process_blocking(&input, &AvatarLimits::default()).unwrap();

        // Assert
        assert_eq!(image::guess_format(&input).unwrap(), ImageFormat::WebP);
        assert_is_reencoded(&input, &avatar, 300, 200);
    }

    #[test]
    fn a_gif_is_accepted() {
        // Arrange
        let input = encode(gradient(200, 120).into(), ImageFormat::Gif);

        // Act
        let avatar = process_blocking(&input, &AvatarLimits::default()).unwrap();

        // Assert
        assert_is_reencoded(&input, &avatar, 200, 120);
    }

    #[test]
    fn only_the_first_frame_of_an_animated_gif_is_used() {
        // Arrange
        let red = RgbaImage::from_pixel(64, 64, Rgba([255, 0, 0, 255]));
        let blue = RgbaImage::from_pixel(64, 64, Rgba([0, 0, 255, 255]));
        let mut input = Vec::new();
        GifEncoder::new(&mut input)
            .encode_frames([Frame::new(red), Frame::new(blue)])
            .unwrap();

        // Act
        let avatar = process_blocking(&input, &AvatarLimits::default()).unwrap();

        // Assert
        let Rgb([r, g, b]) = *decode_jpeg(&avatar.full).into_rgb8().get_pixel(32, 32);
        assert!(r > 200 && g < 60 && b < 60, "expected red, got {r},{g},{b}");
    }

    #[test]
    fn transparent_areas_become_white() {
        // Arrange
        let input = encode(
            RgbaImage::from_pixel(40, 40, Rgba([0, 0, 0, 0])).into(),
            ImageFormat::Png,
        );

        // Act
        let avatar = process_blocking(&input, &AvatarLimits::default()).unwrap();

        // Assert
        let full = decode_jpeg(&avatar.full).into_rgb8();
        assert!(full.pixels().all(|p| p.0.iter().all(|&c| c > 245)));
    }

    #[test]
    fn exif_metadata_including_gps_is_stripped() {
        // Arrange
        let marker = b"GPSLatitude-SECRET-MARKER";
        let mut payload = b"Exif\0\0".to_vec();
        payload.extend_from_slice(marker);
        let input = with_app1(&jpeg(64, 48), &payload);
        assert!(image::load_from_memory(&input).is_ok());

        // Act
        let avatar = process_blocking(&input, &AvatarLimits::default()).unwrap();

        // Assert
        for output in [&avatar.full, &avatar.thumb] {
            assert!(!contains(output, b"Exif"));
            assert!(!contains(output, marker));
        }
    }

    #[test]
    fn exif_orientation_is_applied_before_the_metadata_is_dropped() {
        // Arrange: left half red, right half blue, tagged "rotate 90° clockwise to display".
        let image = RgbImage::from_fn(200, 100, |x, _| {
            if x < 100 {
                Rgb([255, 0, 0])
            } else {
                Rgb([0, 0, 255])
            }
        });
        let mut payload = b"Exif\0\0MM\0\x2a\0\0\0\x08".to_vec();
        payload.extend_from_slice(&[0, 1, 0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 6, 0, 0, 0, 0, 0, 0]);
        let input = with_app1(&encode(image.into(), ImageFormat::Jpeg), &payload);

        // Act
        let avatar = process_blocking(&input, &AvatarLimits::default()).unwrap();

        // Assert: upright is 100×200 with the red half on top.
        assert_eq!((avatar.width, avatar.height), (100, 200));
        let full = decode_jpeg(&avatar.full).into_rgb8();
        assert!(full.get_pixel(50, 20)[0] > 200);
        assert!(full.get_pixel(50, 180)[2] > 200);
    }

    #[test]
    fn html_is_rejected_as_an_unsupported_format() {
        // Arrange
        let input = b"<html><script>alert(1)</script></html>";

        // Act
        let result = process_blocking(input, &AvatarLimits::default());

        // Assert
        assert_eq!(result.unwrap_err(), AvatarError::UnsupportedFormat);
    }

    #[test]
    fn svg_with_a_script_is_rejected_as_an_unsupported_format() {
        // Arrange
        let input = br#"<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>"#;

        // Act
        let result = process_blocking(input, &AvatarLimits::default());

        // Assert
        assert_eq!(result.unwrap_err(), AvatarError::UnsupportedFormat);
    }

    #[test]
    fn bmp_is_rejected_as_an_unsupported_format() {
        // Arrange: a 1×1 24-bit BMP (the crate's BMP codec is not compiled in, so build it here).
        let mut input = b"BM".to_vec();
        input.extend_from_slice(&58u32.to_le_bytes());
        input.extend_from_slice(&0u32.to_le_bytes());
        input.extend_from_slice(&54u32.to_le_bytes());
        input.extend_from_slice(&40u32.to_le_bytes());
        input.extend_from_slice(&1i32.to_le_bytes());
        input.extend_from_slice(&1i32.to_le_bytes());
        input.extend_from_slice(&1u16.to_le_bytes());
        input.extend_from_slice(&24u16.to_le_bytes());
        input.extend_from_slice(&[0; 24]);
        input.extend_from_slice(&[0, 0, 255, 0]);
        assert_eq!(image::guess_format(&input).unwrap(), ImageFormat::Bmp);

        // Act
        let result = process_blocking(&input, &AvatarLimits::default());

        // Assert
        assert_eq!(result.unwrap_err(), AvatarError::UnsupportedFormat);
    }

    #[test]
    fn plain_text_tiff_and_empty_uploads_are_rejected_as_unsupported_formats() {
        // Arrange
        let inputs: [&[u8]; 3] = [b"just some text", b"II*\0\x08\0\0\0", b""];

        for input in inputs {
            // Act
            let result = process_blocking(input, &AvatarLimits::default());

            // Assert
            assert_eq!(result.unwrap_err(), AvatarError::UnsupportedFormat);
        }
    }

    #[test]
    fn a_truncated_jpeg_is_undecodable() {
        // Arrange
        let valid = jpeg(256, 256);
        let input = &valid[..valid.len() / 2];

        // Act
        let result = process_blocking(input, &AvatarLimits::default());

        // Assert
        assert!(
            matches!(result, Err(AvatarError::Undecodable(_))),
            "{result:?}"
        );
    }

    #[test]
    fn a_truncated_jpeg_is_undecodable_even_if_an_embedded_exif_thumbnail_is_complete() {
        // Arrange
        let mut payload = b"Exif\0\0".to_vec();
        payload.extend_from_slice(&jpeg(8, 8));
        let valid = with_app1(&jpeg(256, 256), &payload);
        let input = &valid[..valid.len() - 100];

        // Act
        let result = process_blocking(input, &AvatarLimits::default());

        // Assert
        assert!(
            matches!(result, Err(AvatarError::Undecodable(_))),
            "{result:?}"
        );
    }

    #[test]
    fn data_appended_after_the_end_of_a_jpeg_is_tolerated_and_dropped() {
        // Arrange: phones append e.g. a motion-photo video after the JPEG's end marker.
        let marker = b"TRAILING-VIDEO-MARKER";
        let input = [jpeg(64, 64).as_slice(), marker].concat();

        // Act
        let avatar = process_blocking(&input, &AvatarLimits::default()).unwrap();

        // Assert
        assert!(!contains(&avatar.full, marker));
    }

    #[test]
    fn truncated_png_gif_and_webp_pictures_are_undecodable() {
        // Arrange
        let image = DynamicImage::from(gradient(256, 256));
        let inputs = [
            encode(image.clone(), ImageFormat::Png),
            encode(image.clone(), ImageFormat::Gif),
            encode(image, ImageFormat::WebP),
        ];

        for valid in inputs {
            // Act
            let result = process_blocking(&valid[..valid.len() / 2], &AvatarLimits::default());

            // Assert
            assert!(
                matches!(result, Err(AvatarError::Undecodable(_))),
                "{:?}: {:?}",
                image::guess_format(&valid),
                result.map(|a| (a.width, a.height))
            );
        }
    }

    #[test]
    fn a_png_header_claiming_60000_by_60000_is_rejected_quickly() {
        // Arrange: a real 1×1 PNG whose IHDR is patched to claim 60,000×60,000.
        let mut input = png(1, 1);
        assert_eq!(&input[12..16], b"IHDR");
        input[16..20].copy_from_slice(&60_000u32.to_be_bytes());
        input[20..24].copy_from_slice(&60_000u32.to_be_bytes());
        let crc = crc32(&input[12..29]);
        input[29..33].copy_from_slice(&crc.to_be_bytes());

        // Act
        let started = Instant::now();
        let result = process_blocking(&input, &AvatarLimits::default());
        let elapsed = started.elapsed();

        // Assert
        assert_eq!(result.unwrap_err(), AvatarError::TooManyPixels);
        assert!(elapsed < Duration::from_secs(1), "took {elapsed:?}");
    }

    #[test]
    fn a_picture_wider_than_max_side_is_rejected() {
        // Arrange
        let input = png(9000, 10);

        // Act
        let result = process_blocking(&input, &AvatarLimits::default());

        // Assert
        assert_eq!(result.unwrap_err(), AvatarError::TooManyPixels);
    }

    #[test]
    fn a_picture_with_more_than_max_pixels_is_rejected() {
        // Arrange
        let input = png(100, 100);
        let limits = AvatarLimits {
            max_pixels: 9_999,
            ..AvatarLimits::default()
        };

        // Act
        let result = process_blocking(&input, &limits);

        // Assert
        assert_eq!(result.unwrap_err(), AvatarError::TooManyPixels);
    }

    #[test]
    fn an_upload_one_byte_over_max_bytes_is_too_large_and_one_at_the_limit_is_accepted() {
        // Arrange
        let input = png(20, 20);
        let at_limit = AvatarLimits {
            max_bytes: input.len(),
            ..AvatarLimits::default()
        };
        let one_under = AvatarLimits {
            max_bytes: input.len() - 1,
            ..AvatarLimits::default()
        };

        // Act
        let accepted = process_blocking(&input, &at_limit);
        let rejected = process_blocking(&input, &one_under);

        // Assert
        assert!(accepted.is_ok());
        assert_eq!(rejected.unwrap_err(), AvatarError::TooLarge);
    }

    #[test]
    fn size_is_checked_before_anything_else() {
        // Arrange
        let input = vec![b'<'; 11];
        let limits = AvatarLimits {
            max_bytes: 10,
            ..AvatarLimits::default()
        };

        // Act
        let result = process_blocking(&input, &limits);

        // Assert
        assert_eq!(result.unwrap_err(), AvatarError::TooLarge);
    }

    #[test]
    fn the_content_hash_is_the_lowercase_hex_sha256_of_the_stored_picture() {
        // Arrange
        let input = png(50, 50);

        // Act
        let avatar = process_blocking(&input, &AvatarLimits::default()).unwrap();

        // Assert
        assert_eq!(
            avatar.content_hash,
            format!("{:x}", Sha256::digest(&avatar.full))
        );
        assert!(is_valid_hash(&avatar.content_hash));
    }

    #[test]
    fn every_error_has_a_distinct_user_message() {
        // Arrange
        let errors = [
            AvatarError::TooLarge,
            AvatarError::UnsupportedFormat,
            AvatarError::TooManyPixels,
            AvatarError::Undecodable("x".into()),
            AvatarError::Encoding("x".into()),
        ];

        // Act
        let messages: std::collections::HashSet<_> =
            errors.iter().map(AvatarError::user_message).collect();

        // Assert
        assert_eq!(messages.len(), errors.len());
        assert!(messages.contains("The picture must be a JPEG, PNG, WebP or GIF image."));
    }

    #[tokio::test]
    async fn process_runs_on_the_blocking_pool_with_the_same_result() {
        // Arrange
        let input = png(120, 60);

        // Act
        let avatar = process(input.clone(), AvatarLimits::default())
            .await
            .unwrap();
        let rejected = process(b"<html>".to_vec(), AvatarLimits::default()).await;

        // Assert
        assert_eq!(
            avatar.full,
            process_blocking(&input, &AvatarLimits::default())
                .unwrap()
                .full
        );
        assert_eq!(rejected.unwrap_err(), AvatarError::UnsupportedFormat);
    }

    fn fake_avatar(content: &[u8]) -> ProcessedAvatar {
        ProcessedAvatar {
            full: content.to_vec(),
            thumb: [content, b"-thumb"].concat(),
            content_hash: format!("{:x}", Sha256::digest(content)),
            width: 1,
            height: 1,
        }
    }

    fn file_names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    #[tokio::test]
    async fn a_saved_picture_can_be_read_back_and_removed() {
        // Arrange
        let data_dir = tempfile::tempdir().unwrap();
        let store = AvatarStore::new(data_dir.path());
        let user = Uuid::new_v4();
        let avatar = fake_avatar(b"picture");

        // Act
        store.save(user, &avatar).await.unwrap();
        let full = store.read(user, &avatar.content_hash, false).await.unwrap();
        let thumb = store.read(user, &avatar.content_hash, true).await.unwrap();
        store.remove(user, &avatar.content_hash).await.unwrap();
        let after_removal = store.read(user, &avatar.content_hash, false).await.unwrap();

        // Assert
        assert_eq!(full, Some(avatar.full));
        assert_eq!(thumb, Some(avatar.thumb));
        assert_eq!(after_removal, None);
        assert!(file_names(&data_dir.path().join("avatars")).is_empty());
    }

    #[tokio::test]
    async fn files_get_server_made_names_inside_data_dir_avatars() {
        // Arrange
        let data_dir = tempfile::tempdir().unwrap();
        let store = AvatarStore::new(data_dir.path());
        let user = Uuid::new_v4();
        let avatar = fake_avatar(b"picture");

        // Act
        store.save(user, &avatar).await.unwrap();

        // Assert
        let hash = &avatar.content_hash;
        assert_eq!(file_names(data_dir.path()), vec!["avatars".to_string()]);
        assert_eq!(
            file_names(&data_dir.path().join("avatars")),
            vec![
                format!("{user}-{hash}-thumb.jpg"),
                format!("{user}-{hash}.jpg")
            ]
        );
    }

    #[tokio::test]
    async fn a_malformed_hash_never_reaches_the_filesystem() {
        // Arrange
        let data_dir = tempfile::tempdir().unwrap();
        let store = AvatarStore::new(data_dir.path());
        let user = Uuid::new_v4();
        let mut forged = fake_avatar(b"picture");
        forged.content_hash = "../../escaped".into();
        let uppercase = fake_avatar(b"picture").content_hash.to_uppercase();

        // Act
        let read = store.read(user, "../../etc/passwd", false).await.unwrap();
        let read_uppercase = store.read(user, &uppercase, false).await.unwrap();
        let removed = store.remove(user, "../../etc/passwd").await;
        let saved = store.save(user, &forged).await;

        // Assert
        assert_eq!(read, None);
        assert_eq!(read_uppercase, None);
        assert!(removed.is_ok());
        assert_eq!(saved.unwrap_err().kind(), io::ErrorKind::InvalidInput);
        assert!(file_names(data_dir.path()).is_empty());
    }

    #[tokio::test]
    async fn reading_or_removing_before_anything_was_saved_is_fine() {
        // Arrange
        let data_dir = tempfile::tempdir().unwrap();
        let store = AvatarStore::new(data_dir.path());
        let user = Uuid::new_v4();
        let hash = fake_avatar(b"picture").content_hash;

        // Act
        let read = store.read(user, &hash, true).await.unwrap();
        let removed = store.remove(user, &hash).await;
        let removed_all = store.remove_all_for(user).await;

        // Assert
        assert_eq!(read, None);
        assert!(removed.is_ok());
        assert!(removed_all.is_ok());
    }

    #[tokio::test]
    async fn remove_all_for_deletes_every_file_of_that_user_and_no_one_else() {
        // Arrange
        let data_dir = tempfile::tempdir().unwrap();
        let store = AvatarStore::new(data_dir.path());
        let (user, other) = (Uuid::new_v4(), Uuid::new_v4());
        let (old, new, others) = (
            fake_avatar(b"old"),
            fake_avatar(b"new"),
            fake_avatar(b"other"),
        );
        store.save(user, &old).await.unwrap();
        store.save(user, &new).await.unwrap();
        store.save(other, &others).await.unwrap();

        // Act
        store.remove_all_for(user).await.unwrap();

        // Assert
        assert_eq!(
            store.read(user, &old.content_hash, false).await.unwrap(),
            None
        );
        assert_eq!(
            store.read(user, &new.content_hash, true).await.unwrap(),
            None
        );
        assert_eq!(
            store
                .read(other, &others.content_hash, false)
                .await
                .unwrap(),
            Some(others.full)
        );
        assert_eq!(file_names(&data_dir.path().join("avatars")).len(), 2);
    }
}
