//! Profiles and profile pictures: editing, validation, escaping, and the upload pipeline.

use std::io::Cursor;

use axum::http::{header, StatusCode};
use image::{DynamicImage, ImageFormat, RgbImage};

use crate::helpers::{TestApp, GOOD_PASSWORD};

const PROFILE: [(&str, &str); 6] = [
    ("full_name", "Ada Lovelace"),
    ("headline", "Analyst of engines"),
    ("phone", "+44 20 7946 0958"),
    ("location", "London"),
    ("website", "https://ada.example.org"),
    ("bio", "Wrote the first program."),
];

async fn logged_in(app: &mut TestApp) -> uuid::Uuid {
    app.register("ada", "ada@example.com", GOOD_PASSWORD).await;
    app.user_id("ada@example.com").await
}

async fn events_of_type(app: &TestApp, event_type: &str) -> Vec<serde_json::Value> {
    app.events()
        .await
        .into_iter()
        .filter(|event| event.event_type == event_type)
        .map(|event| event.payload)
        .collect()
}

#[tokio::test]
async fn a_profile_edit_round_trips() {
    let mut app = TestApp::spawn().await;
    logged_in(&mut app).await;

    let saved = app.post_form("/profile", &PROFILE).await;

    assert_eq!(saved.status, StatusCode::SEE_OTHER);
    assert_eq!(saved.location(), "/profile");
    let page = app.get("/profile").await;
    for (_, value) in PROFILE {
        // MiniJinja's HTML escaping also escapes `/`.
        let escaped = value.replace('/', "&#x2f;");
        assert!(
            page.body.contains(&escaped),
            "{value} shown on the profile page"
        );
    }
    assert!(page.body.contains("Your profile has been saved."));
}

#[tokio::test]
async fn a_profile_event_names_only_the_changed_fields() {
    let mut app = TestApp::spawn().await;
    logged_in(&mut app).await;
    app.post_form("/profile", &PROFILE).await;
    let mut changed = PROFILE;
    changed[1] = ("headline", "Mathematician");

    app.post_form("/profile", &changed).await;

    let events = events_of_type(&app, "UserProfileUpdated").await;
    assert_eq!(events.len(), 2);
    assert_eq!(
        events[1],
        serde_json::json!({"ProfileUpdated": {"changes": {"headline": "Mathematician"}}})
    );
}

#[tokio::test]
async fn unchanged_and_empty_submissions_record_nothing() {
    let mut app = TestApp::spawn().await;
    logged_in(&mut app).await;

    let empty = app.post_form("/profile", &[]).await;
    app.post_form("/profile", &PROFILE).await;
    let unchanged = app.post_form("/profile", &PROFILE).await;

    assert_eq!(empty.status, StatusCode::SEE_OTHER);
    assert_eq!(unchanged.status, StatusCode::SEE_OTHER);
    assert_eq!(events_of_type(&app, "UserProfileUpdated").await.len(), 1);
    assert!(app
        .get("/profile")
        .await
        .body
        .contains("the profile is unchanged"));
}

#[tokio::test]
async fn invalid_fields_answer_422_and_keep_the_input() {
    let mut app = TestApp::spawn().await;
    logged_in(&mut app).await;
    let mut form = PROFILE;
    form[2] = ("phone", "call me maybe");
    form[4] = ("website", "javascript:alert(1)");

    let response = app.post_form("/profile", &form).await;

    assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(response.body.contains("Phone may contain only digits"));
    assert!(response.body.contains("Website must be a full address"));
    assert!(
        response.body.contains("value=\"call me maybe\""),
        "input kept"
    );
    assert!(
        response.body.contains("Analyst of engines"),
        "other input kept"
    );
    assert!(events_of_type(&app, "UserProfileUpdated").await.is_empty());
}

#[tokio::test]
async fn xss_payloads_in_every_field_are_rendered_escaped() {
    let mut app = TestApp::spawn().await;
    logged_in(&mut app).await;
    let payload = "\"><script>alert('x')</script><img src=x onerror=alert(1)>";
    let form = [
        ("full_name", payload),
        ("headline", payload),
        ("location", payload),
        ("bio", payload),
        (
            "website",
            "https://ok.example.org/\"><script>alert(1)</script>",
        ),
    ];

    let saved = app.post_form("/profile", &form).await;
    let page = app.get("/profile").await;

    assert_eq!(
        saved.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "the website is refused"
    );
    assert!(!saved.body.contains("<script>alert"));
    let form = &form[..4];
    assert_eq!(
        app.post_form("/profile", form).await.status,
        StatusCode::SEE_OTHER
    );
    let page_after = app.get("/profile").await;
    for body in [&page.body, &page_after.body] {
        assert!(!body.contains("<script>alert"), "raw payload never appears");
        assert!(!body.contains("<img src=x"));
    }
    assert!(page_after.body.contains("&lt;script&gt;"));
}

#[tokio::test]
async fn the_profile_page_shows_the_account_facts() {
    let mut app = TestApp::spawn().await;
    logged_in(&mut app).await;
    let page = app.get("/profile").await;
    assert_eq!(page.status, StatusCode::OK);
    for fact in [
        "ada@example.com",
        "Member since",
        "Last login",
        "/account/password",
    ] {
        assert!(page.body.contains(fact), "{fact}");
    }
}

fn picture(width: u32, height: u32, format: ImageFormat) -> Vec<u8> {
    let image = RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, ((x + y) % 256) as u8])
    });
    let mut bytes = Cursor::new(Vec::new());
    let dynamic = DynamicImage::ImageRgb8(image);
    match format {
        ImageFormat::WebP => {
            let encoder = image::codecs::webp::WebPEncoder::new_lossless(&mut bytes);
            dynamic.write_with_encoder(encoder).unwrap();
        }
        other => dynamic.write_to(&mut bytes, other).unwrap(),
    }
    bytes.into_inner()
}

/// A JPEG with an EXIF segment carrying a location marker, spliced in after SOI.
fn jpeg_with_exif() -> Vec<u8> {
    let jpeg = picture(64, 48, ImageFormat::Jpeg);
    let exif_body = b"Exif\0\0MM\0*\0\0\0\x08GPS-SECRET-LOCATION-52.5200N";
    let mut out = vec![0xFF, 0xD8, 0xFF, 0xE1];
    out.extend_from_slice(&((exif_body.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(exif_body);
    out.extend_from_slice(&jpeg[2..]);
    out
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
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

/// A PNG whose header claims 60,000 × 60,000 pixels (a decompression bomb's calling card).
fn png_claiming_60000_square() -> Vec<u8> {
    let mut png = picture(1, 1, ImageFormat::Png);
    png[16..20].copy_from_slice(&60_000u32.to_be_bytes());
    png[20..24].copy_from_slice(&60_000u32.to_be_bytes());
    let crc = crc32(&png[12..29]);
    png[29..33].copy_from_slice(&crc.to_be_bytes());
    png
}

async fn stored_files(app: &TestApp) -> Vec<String> {
    let dir = app.data_dir().join("avatars");
    let mut names = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries {
            names.push(entry.unwrap().file_name().to_string_lossy().into_owned());
        }
    }
    names.sort();
    names
}

#[tokio::test]
async fn valid_pictures_are_stored_re_encoded_and_served_as_jpeg() {
    for (format, mime, name) in [
        (ImageFormat::Png, "image/png", "me.png"),
        (ImageFormat::Jpeg, "image/jpeg", "me.jpg"),
        (ImageFormat::WebP, "image/webp", "me.webp"),
        (ImageFormat::Gif, "image/gif", "me.gif"),
    ] {
        let mut app = TestApp::spawn().await;
        let id = logged_in(&mut app).await;
        let original = picture(900, 600, format);

        let uploaded = app
            .upload("/profile/avatar", "avatar", name, mime, &original)
            .await;

        assert_eq!(
            uploaded.status,
            StatusCode::SEE_OTHER,
            "{name}: {}",
            uploaded.body
        );
        let served = app.get(&format!("/users/{id}/avatar")).await;
        assert_eq!(served.status, StatusCode::OK);
        assert_eq!(served.headers[header::CONTENT_TYPE], "image/jpeg");
        assert_eq!(served.headers["x-content-type-options"], "nosniff");
        assert!(served.headers[header::CACHE_CONTROL]
            .to_str()
            .unwrap()
            .contains("private"));
        assert!(served.headers.contains_key(header::ETAG));
        let served_picture = image::load_from_memory(&served.bytes).unwrap();
        assert_eq!(
            (served_picture.width(), served_picture.height()),
            (512, 341),
            "{name}"
        );
        let files = stored_files(&app).await;
        assert_eq!(files.len(), 2, "picture and thumbnail: {files:?}");
        let (thumbs, fulls): (Vec<&String>, Vec<&String>) =
            files.iter().partition(|name| name.ends_with("-thumb.jpg"));
        let full = std::fs::read(app.data_dir().join("avatars").join(fulls[0])).unwrap();
        assert_ne!(full, original, "{name}: re-encoded");
        let decoded = image::load_from_memory(&full).unwrap();
        assert_eq!((decoded.width(), decoded.height()), (512, 341), "{name}");
        let thumb = std::fs::read(app.data_dir().join("avatars").join(thumbs[0])).unwrap();
        let thumb = image::load_from_memory(&thumb).unwrap();
        assert_eq!((thumb.width(), thumb.height()), (96, 96));
    }
}

#[tokio::test]
async fn the_event_records_hash_and_size_not_bytes() {
    let mut app = TestApp::spawn().await;
    logged_in(&mut app).await;
    app.upload(
        "/profile/avatar",
        "avatar",
        "a.png",
        "image/png",
        &picture(100, 100, ImageFormat::Png),
    )
    .await;
    let events = events_of_type(&app, "UserAvatarChanged").await;
    assert_eq!(events.len(), 1);
    let changed = &events[0]["AvatarChanged"];
    assert_eq!(changed["width"], 100);
    assert_eq!(changed["content_hash"].as_str().unwrap().len(), 64);
    assert!(
        events[0].to_string().len() < 300,
        "no image bytes in the event"
    );
}

#[tokio::test]
async fn exif_metadata_is_stripped() {
    let mut app = TestApp::spawn().await;
    logged_in(&mut app).await;
    let original = jpeg_with_exif();
    assert!(
        image::load_from_memory(&original).is_ok(),
        "the test picture is valid"
    );

    let uploaded = app
        .upload(
            "/profile/avatar",
            "avatar",
            "gps.jpg",
            "image/jpeg",
            &original,
        )
        .await;

    assert_eq!(uploaded.status, StatusCode::SEE_OTHER, "{}", uploaded.body);
    for name in stored_files(&app).await {
        let bytes = std::fs::read(app.data_dir().join("avatars").join(name)).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains("GPS-SECRET"), "location gone");
        assert!(!text.contains("Exif"), "EXIF gone");
    }
}

#[tokio::test]
async fn hostile_uploads_are_refused_with_422() {
    let truncated = {
        let jpeg = picture(200, 200, ImageFormat::Jpeg);
        jpeg[..jpeg.len() / 2].to_vec()
    };
    let cases: Vec<(&str, &str, Vec<u8>)> = vec![
        (
            "page.png",
            "image/png",
            b"<html><script>alert(1)</script></html>".to_vec(),
        ),
        (
            "logo.svg",
            "image/svg+xml",
            br#"<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>"#.to_vec(),
        ),
        ("cut.jpg", "image/jpeg", truncated),
        ("bomb.png", "image/png", png_claiming_60000_square()),
        ("empty.png", "image/png", Vec::new()),
    ];
    for (name, mime, bytes) in cases {
        let mut app = TestApp::spawn().await;
        let id = logged_in(&mut app).await;
        let started = std::time::Instant::now();

        let response = app
            .upload("/profile/avatar", "avatar", name, mime, &bytes)
            .await;

        assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY, "{name}");
        assert!(
            response.body.contains("avatar-error"),
            "{name}: message next to the field"
        );
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "{name} refused quickly"
        );
        assert!(
            stored_files(&app).await.is_empty(),
            "{name}: nothing stored"
        );
        assert_eq!(
            app.get(&format!("/users/{id}/avatar")).await.status,
            StatusCode::NOT_FOUND
        );
    }
}

#[tokio::test]
async fn a_picture_one_byte_over_the_limit_is_refused_with_413() {
    let mut app = TestApp::spawn_with(|config| config.avatar_max_bytes = 20_000).await;
    logged_in(&mut app).await;
    let mut bytes = picture(64, 64, ImageFormat::Png);
    bytes.resize(20_001, 0);

    let response = app
        .upload("/profile/avatar", "avatar", "big.png", "image/png", &bytes)
        .await;

    assert_eq!(response.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(response.body.contains("too large"));
    assert!(stored_files(&app).await.is_empty());
}

#[tokio::test]
async fn a_body_far_over_the_limit_is_refused_with_413() {
    let mut app = TestApp::spawn_with(|config| config.avatar_max_bytes = 20_000).await;
    logged_in(&mut app).await;
    let bytes = vec![0u8; 2_000_000];
    let response = app
        .upload("/profile/avatar", "avatar", "huge.png", "image/png", &bytes)
        .await;
    assert_eq!(response.status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn the_client_filename_never_names_a_file() {
    let mut app = TestApp::spawn().await;
    logged_in(&mut app).await;
    let response = app
        .upload(
            "/profile/avatar",
            "avatar",
            "../../x.png",
            "image/png",
            &picture(50, 50, ImageFormat::Png),
        )
        .await;
    assert_eq!(response.status, StatusCode::SEE_OTHER);
    assert!(!app.data_dir().join("x.png").exists());
    assert!(!app.data_dir().parent().unwrap().join("x.png").exists());
    for name in stored_files(&app).await {
        assert!(!name.contains("x.png"), "{name}");
        assert!(name.ends_with(".jpg"));
    }
}

#[tokio::test]
async fn an_upload_without_the_csrf_token_is_forbidden() {
    let mut app = TestApp::spawn().await;
    logged_in(&mut app).await;
    let response = app
        .post_raw(
            "/profile/avatar",
            "multipart/form-data; boundary=x",
            "--x\r\nContent-Disposition: form-data; name=\"avatar\"; filename=\"a.png\"\r\n\r\nabc\r\n--x--\r\n",
        )
        .await;
    assert_eq!(response.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn replacing_and_removing_a_picture_removes_its_files() {
    let mut app = TestApp::spawn().await;
    let id = logged_in(&mut app).await;
    app.upload(
        "/profile/avatar",
        "avatar",
        "a.png",
        "image/png",
        &picture(60, 60, ImageFormat::Png),
    )
    .await;
    let first = stored_files(&app).await;

    app.upload(
        "/profile/avatar",
        "avatar",
        "b.png",
        "image/png",
        &picture(70, 50, ImageFormat::Png),
    )
    .await;
    let second = stored_files(&app).await;
    assert_eq!(second.len(), 2);
    assert!(
        first.iter().all(|name| !second.contains(name)),
        "old files gone"
    );

    let removed = app.post_form("/profile/avatar/delete", &[]).await;
    assert_eq!(removed.status, StatusCode::SEE_OTHER);
    assert!(stored_files(&app).await.is_empty());
    assert_eq!(
        app.get(&format!("/users/{id}/avatar")).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn pictures_are_private_to_their_owner_and_superusers() {
    let mut app = TestApp::spawn().await;
    let id = logged_in(&mut app).await;
    app.upload(
        "/profile/avatar",
        "avatar",
        "a.png",
        "image/png",
        &picture(60, 60, ImageFormat::Png),
    )
    .await;
    assert_eq!(
        app.get(&format!("/users/{id}/avatar?size=thumb"))
            .await
            .status,
        StatusCode::OK
    );

    let mut anonymous = app.new_browser();
    let response = anonymous.get(&format!("/users/{id}/avatar")).await;
    assert_eq!(response.status, StatusCode::SEE_OTHER);
    assert!(response.location().starts_with("/login?next="));

    let mut other = app.new_browser();
    other
        .register("eve", "eve@example.com", GOOD_PASSWORD)
        .await;
    assert_eq!(
        other.get(&format!("/users/{id}/avatar")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        other.get("/users/not-a-uuid/avatar").await.status,
        StatusCode::NOT_FOUND
    );

    app.logout().await;
    app.logged_in_superuser().await;
    assert_eq!(
        app.get(&format!("/users/{id}/avatar")).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_cached_picture_is_revalidated_with_its_etag() {
    let mut app = TestApp::spawn().await;
    let id = logged_in(&mut app).await;
    app.upload(
        "/profile/avatar",
        "avatar",
        "a.png",
        "image/png",
        &picture(60, 60, ImageFormat::Png),
    )
    .await;
    let first = app.get(&format!("/users/{id}/avatar")).await;
    let etag = first.headers[header::ETAG].to_str().unwrap().to_owned();

    let request = axum::http::Request::builder()
        .uri(format!("/users/{id}/avatar"))
        .header(header::IF_NONE_MATCH, &etag)
        .body(axum::body::Body::empty())
        .unwrap();
    let second = app.send(request).await;

    assert_eq!(second.status, StatusCode::NOT_MODIFIED);
    assert!(second.body.is_empty());
}
