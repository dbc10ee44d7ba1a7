//! Personal data: exporting everything held about a person (GDPR articles 15 and 20) and erasing
//! it (article 17) although the event log is append-only.
//!
//! Erasure is crypto-shredding (see `projections::event_log`): recording `UserErased` destroys the
//! person's data key in the same transaction, so their personal data in the log becomes
//! unreadable while the facts (event types, times, ids) stay; the projector removes them from
//! every read model. What lies outside the database is removed here: their pictures, the mails
//! to them still in the outbox, the claims on their username and email (free to register
//! again). Last, the database's write-ahead log is checkpointed and truncated, so no older copy
//! of a deleted page survives in it (deleted content is zeroed: `secure_delete`).

use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use projections::audit::{self, AuditRow};
use projections::cvs::{self, CvSummary};
use projections::users::{self, UserRow};
use projections::{profiles, EventMetadata};
use serde_json::{json, Value};
use sqlx::SqlitePool;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use uuid::Uuid;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

use crate::administration::{AdminError, Administration};
use crate::avatars::AvatarStore;

/// Why an erasure did not happen.
#[derive(Debug, thiserror::Error)]
pub enum ErasureError {
    /// No such (or an already erased) account.
    #[error("no such account")]
    NotFound,
    /// The owner's password did not match.
    #[error("That is not your password.")]
    WrongPassword,
    /// It is the last active superuser (409).
    #[error("This is the last active superuser: promote someone else first, then erase it.")]
    LastSuperuser,
    /// Storage failed.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// What an erasure removed besides the event log's key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Erased {
    /// Picture files deleted.
    pub pictures: usize,
    /// Outbox mails deleted.
    pub mails: usize,
    /// Username and email claims released.
    pub claims: u64,
}

/// A person's data as one zip archive.
#[derive(Debug, Clone)]
pub struct DataExport {
    /// A file name for the download, e.g. `cv-manager-alice-2026-12-02.zip`.
    pub file_name: String,
    /// The archive.
    pub bytes: Vec<u8>,
}

/// Export and erasure of personal data.
pub struct Privacy {
    pool: SqlitePool,
    administration: Arc<Administration>,
    avatars: AvatarStore,
    outbox: PathBuf,
}

impl Privacy {
    /// Over the database behind `pool`, with pictures under `data_dir` and mail in `outbox`.
    pub fn new(
        pool: SqlitePool,
        administration: Arc<Administration>,
        data_dir: &Path,
        outbox: PathBuf,
    ) -> Self {
        Self {
            pool,
            administration,
            avatars: AvatarStore::new(data_dir),
            outbox,
        }
    }

    /// Erases the account `user`: records the erasure (which destroys their data key), then
    /// removes their pictures, outbox mails and name claims and truncates the write-ahead log.
    /// `password` is the owner's, when they erase their own account.
    pub async fn erase(
        &self,
        user: &UserRow,
        password: Option<String>,
        metadata: &EventMetadata,
    ) -> Result<Erased, ErasureError> {
        self.administration
            .erase(user, password, metadata)
            .await
            .map_err(|error| match error {
                AdminError::NotFound => ErasureError::NotFound,
                AdminError::WrongPassword => ErasureError::WrongPassword,
                AdminError::LastSuperuser => ErasureError::LastSuperuser,
                other => ErasureError::Internal(anyhow::anyhow!("{other}")),
            })?;
        let pictures = self
            .avatars
            .remove_all_for(user.id)
            .await
            .map_err(anyhow::Error::from)?;
        let mails = remove_mail_to(&self.outbox, &user.email).map_err(anyhow::Error::from)?;
        let claims = projections::claims::release_all_for(&self.pool, &user.id.to_string())
            .await
            .map_err(anyhow::Error::from)?;
        truncate_write_ahead_log(&self.pool).await;
        tracing::info!(user_id = %user.id, pictures, mails, claims, "account erased");
        Ok(Erased {
            pictures,
            mails,
            claims,
        })
    }

    /// Everything held about `user_id` as a zip archive: the account and profile, every CV as a
    /// JSON Resume document, the picture, and the account's own audit trail. `None` for an
    /// unknown (or erased) account.
    pub async fn export(&self, user_id: Uuid) -> anyhow::Result<Option<DataExport>> {
        let Some(user) = users::find_by_id(&self.pool, user_id).await? else {
            return Ok(None);
        };
        let profile = profiles::find(&self.pool, user_id)
            .await?
            .unwrap_or_default();
        let picture = match &profile.avatar_hash {
            Some(hash) => self.avatars.read(user_id, hash, false).await?,
            None => None,
        };
        let cv_list = cvs::list_for_owner(&self.pool, user_id).await?;
        let mut documents = Vec::with_capacity(cv_list.len());
        for cv in &cv_list {
            if let Some(document) = cvs::document(&self.pool, cv.id).await? {
                documents.push((
                    cv_file(cv),
                    domain::to_json_resume(&document.title, &document.content),
                ));
            }
        }
        let mut ids: Vec<String> = vec![user_id.to_string()];
        ids.extend(cv_list.iter().map(|cv| cv.id.to_string()));
        let trail = audit::trail_about(&self.pool, &ids).await?;
        let now = OffsetDateTime::now_utc();

        let account = json!({
            "exported_at": rfc3339(Some(now)),
            "account": {
                "id": user.id,
                "username": user.username,
                "email": user.email,
                "role": user.role.as_str(),
                "active": user.active,
                "date_joined": rfc3339(Some(user.date_joined)),
                "last_login": rfc3339(user.last_login),
            },
            "profile": {
                "full_name": profile.full_name,
                "headline": profile.headline,
                "phone": profile.phone,
                "location": profile.location,
                "website": profile.website,
                "bio": profile.bio,
                "picture": picture.as_ref().map(|_| "picture.jpg"),
            },
            "cvs": cv_list.iter().map(|cv| json!({
                "id": cv.id,
                "title": cv.title,
                "status": if cv.archived { "archived" } else { "active" },
                "created_at": rfc3339(Some(cv.created_at)),
                "updated_at": rfc3339(Some(cv.updated_at)),
                "version": cv.version,
                "file": cv_file(cv),
            })).collect::<Vec<_>>(),
        });
        let activity: Vec<Value> = trail.iter().map(|row| activity(row, user_id)).collect();

        let mut files: Vec<(String, Vec<u8>)> = vec![
            ("README.txt".into(), readme(&user, now).into_bytes()),
            ("account.json".into(), pretty(&account)),
            ("activity.json".into(), pretty(&Value::Array(activity))),
        ];
        for (name, document) in documents {
            files.push((name, pretty(&document)));
        }
        if let Some(picture) = picture {
            files.push(("picture.jpg".into(), picture));
        }
        let bytes = zip_archive(files)?;
        Ok(Some(DataExport {
            file_name: format!("cv-manager-{}-{}.zip", user.username, now.date()),
            bytes,
        }))
    }
}

fn cv_file(cv: &CvSummary) -> String {
    format!("cvs/{}.json", cv.id)
}

fn rfc3339(at: Option<OffsetDateTime>) -> Value {
    at.and_then(|at| at.format(&Rfc3339).ok())
        .map_or(Value::Null, Value::String)
}

fn pretty(value: &Value) -> Vec<u8> {
    serde_json::to_vec_pretty(value).unwrap_or_default()
}

/// One line of the person's own trail. Who acted is "you", "an administrator", "someone not
/// logged in" or "the system" — never another person's name, id or address; the IP address and
/// browser are shown only for what the person did themselves.
fn activity(row: &AuditRow, user_id: Uuid) -> Value {
    let by_you = row.actor_id == Some(user_id);
    let by = match row.actor_id {
        Some(_) if by_you => "you",
        Some(_) => "an administrator",
        None if row.ip.is_some() => "someone not logged in (a login or a reset request)",
        None => "the system (command line)",
    };
    json!({
        "at": rfc3339(row.at),
        "event_type": row.event_type,
        "what": row.summary,
        "by": by,
        "ip": if by_you { row.ip.clone() } else { None },
        "user_agent": if by_you { row.user_agent.clone() } else { None },
    })
}

fn readme(user: &UserRow, now: OffsetDateTime) -> String {
    format!(
        "CV Manager: everything held about the account {username}\n\
         Exported {date} (UTC).\n\n\
         account.json   your account and profile as you entered them, and the list of your CVs\n\
         cvs/*.json     each CV as a JSON Resume 1.2.1 document (import it here or elsewhere)\n\
         picture.jpg    your profile picture, if you have one (as stored: re-encoded, no metadata)\n\
         activity.json  what happened to your account and CVs, and when: sign-ups, logins, edits;\n\
         \x20              IP addresses and browsers only for what you did yourself\n\n\
         Passwords are stored only as one-way hashes and are not part of this archive.\n\
         To delete your account and personal data, use /account/delete.\n",
        username = user.username,
        date = now.date(),
    )
}

fn zip_archive(files: Vec<(String, Vec<u8>)>) -> anyhow::Result<Vec<u8>> {
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
    for (name, bytes) in files {
        zip.start_file(name, options)?;
        zip.write_all(&bytes)?;
    }
    Ok(zip.finish()?.into_inner())
}

/// Deletes the outbox mails addressed to (or mentioning) `email`; returns how many.
fn remove_mail_to(outbox: &Path, email: &str) -> std::io::Result<usize> {
    let entries = match std::fs::read_dir(outbox) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(error) => return Err(error),
    };
    let needle = email.to_ascii_lowercase();
    let mut removed = 0;
    for entry in entries {
        let path = entry?.path();
        if path.extension().is_none_or(|ext| ext != "eml") {
            continue;
        }
        let text = String::from_utf8_lossy(&std::fs::read(&path)?).to_ascii_lowercase();
        if text.contains(&needle) {
            std::fs::remove_file(&path)?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Checkpoints the write-ahead log into the database file and truncates it, so that no older
/// version of a page with erased data stays in it. Readers in the middle of a transaction can
/// hold a checkpoint back; it is retried for a moment, then left to SQLite's next automatic
/// checkpoint (logged).
pub async fn truncate_write_ahead_log(pool: &SqlitePool) {
    for _ in 0..40 {
        match sqlx::query_as::<_, (i64, i64, i64)>("PRAGMA wal_checkpoint(TRUNCATE)")
            .fetch_one(pool)
            .await
        {
            Ok((0, _, _)) => return,
            Ok(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            Err(error) => {
                tracing::warn!(%error, "could not checkpoint the write-ahead log");
                return;
            }
        }
    }
    tracing::warn!("the write-ahead log stayed busy; it is checkpointed again automatically");
}
