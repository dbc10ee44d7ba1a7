//! `/profile` (personal information, picture, account facts), the picture upload and removal,
//! and `/users/{id}/avatar`, which serves pictures to their owner and to superusers only.

use axum::extract::{DefaultBodyLimit, Multipart, Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use domain::ProfileInput;
use minijinja::context;
use projections::users::UserRow;
use serde::Deserialize;
use uuid::Uuid;

use crate::http::error::{Error, Result};
use crate::http::extract::{ClientInfo, Page, RequireUser};
use crate::http::AppState;
use crate::profiles::ProfileError;

/// Room for the multipart envelope and the form's other fields around the picture itself.
const MULTIPART_OVERHEAD: usize = 64 * 1024;

/// Routes of this module; uploads may carry up to `max_picture_bytes` of picture.
pub fn router(max_picture_bytes: usize) -> Router<AppState> {
    Router::new()
        .route("/profile", get(show).post(update))
        .route(
            "/profile/avatar",
            post(upload).layer(DefaultBodyLimit::max(
                max_picture_bytes + MULTIPART_OVERHEAD,
            )),
        )
        .route("/profile/avatar/delete", post(remove))
        .route("/users/{id}/avatar", get(picture))
}

/// The profile form; every field defaults to empty.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ProfileForm {
    full_name: String,
    headline: String,
    phone: String,
    location: String,
    website: String,
    bio: String,
}

impl From<ProfileForm> for ProfileInput {
    fn from(form: ProfileForm) -> Self {
        Self {
            full_name: form.full_name,
            headline: form.headline,
            phone: form.phone,
            location: form.location,
            website: form.website,
            bio: form.bio,
        }
    }
}

async fn render_profile(
    state: &AppState,
    page: &Page,
    user: &UserRow,
    status: StatusCode,
    form: Option<minijinja::Value>,
    errors: minijinja::Value,
) -> Result<Response> {
    let profile = state.profiles.find(user.id).await?;
    let form = form.unwrap_or_else(|| minijinja::Value::from_serialize(&profile));
    page.render_with_status(
        status,
        "profile/index.html",
        context! {
            user => context! {
                id => user.id.to_string(),
                username => user.username,
                email => user.email,
                role => user.role.as_str(),
                date_joined => user.date_joined.date().to_string(),
                last_login => user.last_login.map(|at| at.date().to_string()),
            },
            profile => profile,
            form => form,
            errors => errors,
            max_picture_mib => state.profiles.max_picture_bytes() as f64 / (1024.0 * 1024.0),
        },
    )
    .await
}

async fn show(
    State(state): State<AppState>,
    page: Page,
    RequireUser(user): RequireUser,
) -> Result<Response> {
    render_profile(&state, &page, &user, StatusCode::OK, None, context! {}).await
}

async fn update(
    State(state): State<AppState>,
    page: Page,
    client: ClientInfo,
    RequireUser(user): RequireUser,
    Form(form): Form<ProfileForm>,
) -> Result<Response> {
    let kept = context! {
        full_name => form.full_name, headline => form.headline, phone => form.phone,
        location => form.location, website => form.website, bio => form.bio,
    };
    let input = ProfileInput::from(form);
    match state
        .profiles
        .update(user.id, &input, &client.metadata(Some(user.id)))
        .await
    {
        Ok(changed) => {
            let message = if changed {
                "Your profile has been saved."
            } else {
                "Nothing to save: the profile is unchanged."
            };
            page.session().flash("success", message).await?;
            Ok(Redirect::to("/profile").into_response())
        }
        Err(ProfileError::Invalid(errors)) => {
            render_profile(
                &state,
                &page,
                &user,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(kept),
                minijinja::Value::from_serialize(&errors),
            )
            .await
        }
        Err(other) => Err(Error::Internal(other.into())),
    }
}

/// Reads the `avatar` field, counting bytes as they arrive so that an oversized picture is
/// refused without being held in memory. Other fields are ignored.
async fn read_picture(
    multipart: &mut Multipart,
    limit: usize,
) -> Result<Option<Vec<u8>>, StatusCode> {
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => return Ok(None),
            Err(error) => return Err(error.status()),
        };
        if field.name() != Some("avatar") {
            continue;
        }
        let mut field = field;
        let mut bytes = Vec::new();
        loop {
            match field.chunk().await {
                Ok(Some(chunk)) => {
                    if bytes.len() + chunk.len() > limit {
                        return Err(StatusCode::PAYLOAD_TOO_LARGE);
                    }
                    bytes.extend_from_slice(&chunk);
                }
                Ok(None) => return Ok(Some(bytes)),
                Err(error) => return Err(error.status()),
            }
        }
    }
}

async fn upload(
    State(state): State<AppState>,
    page: Page,
    client: ClientInfo,
    RequireUser(user): RequireUser,
    multipart: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Result<Response> {
    let picture_error = |message: &str| context! { avatar => message };
    let Ok(mut multipart) = multipart else {
        return render_profile(
            &state,
            &page,
            &user,
            StatusCode::UNPROCESSABLE_ENTITY,
            None,
            picture_error("Choose a picture to upload."),
        )
        .await;
    };
    let bytes = match read_picture(&mut multipart, state.profiles.max_picture_bytes()).await {
        Ok(Some(bytes)) if !bytes.is_empty() => bytes,
        Ok(_) => {
            return render_profile(
                &state,
                &page,
                &user,
                StatusCode::UNPROCESSABLE_ENTITY,
                None,
                picture_error("Choose a picture to upload."),
            )
            .await
        }
        Err(StatusCode::PAYLOAD_TOO_LARGE) => {
            let message = format!(
                "The picture is too large: at most {:.0} MiB.",
                state.profiles.max_picture_bytes() as f64 / (1024.0 * 1024.0)
            );
            return render_profile(
                &state,
                &page,
                &user,
                StatusCode::PAYLOAD_TOO_LARGE,
                None,
                picture_error(&message),
            )
            .await;
        }
        Err(_) => {
            return render_profile(
                &state,
                &page,
                &user,
                StatusCode::UNPROCESSABLE_ENTITY,
                None,
                picture_error("The upload was incomplete or malformed. Please try again."),
            )
            .await
        }
    };
    match state
        .profiles
        .change_picture(user.id, bytes, &client.metadata(Some(user.id)))
        .await
    {
        Ok(()) => {
            page.session()
                .flash("success", "Your profile picture has been updated.")
                .await?;
            Ok(Redirect::to("/profile").into_response())
        }
        Err(ProfileError::Picture(refused)) => {
            let status = if matches!(refused, crate::avatars::AvatarError::TooLarge) {
                StatusCode::PAYLOAD_TOO_LARGE
            } else {
                StatusCode::UNPROCESSABLE_ENTITY
            };
            render_profile(
                &state,
                &page,
                &user,
                status,
                None,
                picture_error(refused.user_message()),
            )
            .await
        }
        Err(other) => Err(Error::Internal(other.into())),
    }
}

async fn remove(
    State(state): State<AppState>,
    page: Page,
    client: ClientInfo,
    RequireUser(user): RequireUser,
) -> Result<Response> {
    let removed = state
        .profiles
        .remove_picture(user.id, &client.metadata(Some(user.id)))
        .await
        .map_err(|error| Error::Internal(error.into()))?;
    let message = if removed {
        "Your profile picture has been removed."
    } else {
        "There was no profile picture to remove."
    };
    page.session().flash("success", message).await?;
    Ok(Redirect::to("/profile").into_response())
}

async fn picture(
    State(state): State<AppState>,
    RequireUser(viewer): RequireUser,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response> {
    let owner = Uuid::parse_str(&id).map_err(|_| Error::NotFound)?;
    // Pictures are personal data: only their owner and superusers see them; for everyone else
    // the picture does not exist.
    if owner != viewer.id && !viewer.is_superuser() {
        return Err(Error::NotFound);
    }
    // `?size=thumb` asks for the thumbnail; anything else gets the picture.
    let thumb = query
        .and_then(|q| serde_urlencoded::from_str::<Vec<(String, String)>>(&q).ok())
        .is_some_and(|pairs| pairs.iter().any(|(k, v)| k == "size" && v == "thumb"));
    let Some((hash, bytes)) = state.profiles.picture(owner, thumb).await? else {
        return Err(Error::NotFound);
    };
    let etag = format!("\"{hash}{}\"", if thumb { "-thumb" } else { "" });
    let cache = [
        (header::CACHE_CONTROL, "private, no-cache".to_owned()),
        (header::ETAG, etag.clone()),
    ];
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.split(',').any(|tag| tag.trim() == etag));
    if matches {
        return Ok((StatusCode::NOT_MODIFIED, cache).into_response());
    }
    let mut response = (cache, bytes).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("image/jpeg"));
    Ok(response)
}
